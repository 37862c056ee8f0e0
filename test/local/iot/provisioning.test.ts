import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  CreateCertificateFromCsrCommand,
  CreatePolicyCommand,
  CreateProvisioningTemplateCommand,
  DescribeEndpointCommand,
  DescribeProvisioningTemplateCommand,
  DescribeThingCommand,
  ListAttachedPoliciesCommand,
  ListProvisioningTemplatesCommand,
  ListThingPrincipalsCommand,
  RegisterThingCommand,
} from "@aws-sdk/client-iot";
import { evaluateTemplate } from "#core/provisioning-template/index.ts";
import { applyProvisioningPlan, IotServiceError } from "#local/iot/index.ts";
import { opensslCertificateId, opensslCsr, opensslVerify } from "#test/core/pki/openssl.ts";
import { type EmulatorFixture, sdkError, startEmulator } from "./emulator-fixture.ts";

const POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "iot:Connect", Resource: "*" }],
});

/** The shape of templates/provisioning/cvm-device.json. */
const CVM_TEMPLATE = JSON.stringify({
  Parameters: {
    SerialNumber: { Type: "String" },
    ProductKey: { Type: "String" },
    CertificateId: { Type: "String" },
  },
  Resources: {
    thing: {
      Type: "AWS::IoT::Thing",
      Properties: {
        ThingName: { Ref: "SerialNumber" },
        AttributePayload: { productKey: { Ref: "ProductKey" }, serialNumber: { Ref: "SerialNumber" } },
      },
      OverrideSettings: { AttributePayload: "REPLACE" },
    },
    certificate: {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "CertificateId" }, Status: "ACTIVE" },
    },
    policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "device-policy" } },
  },
});

describe("IoT emulator: provisioning", () => {
  let f: EmulatorFixture;
  before(async () => {
    f = await startEmulator({ dataEndpoint: "mqtt.local.test:8883" });
    await f.client.send(new CreatePolicyCommand({ policyName: "device-policy", policyDocument: POLICY }));
  });
  after(() => f.stop());

  const newCertificate = async (cn: string) =>
    f.client.send(
      new CreateCertificateFromCsrCommand({
        certificateSigningRequest: opensslCsr("ec:P-256", `/CN=${cn}`).csrPem,
      }),
    );

  it("RegisterThing with a CertificateId creates the thing, activates and attaches everything", async () => {
    const cert = await newCertificate("SN-100");
    const registered = await f.client.send(
      new RegisterThingCommand({
        templateBody: CVM_TEMPLATE,
        parameters: { SerialNumber: "SN-100", ProductKey: "pk1", CertificateId: cert.certificateId! },
      }),
    );
    assert.deepEqual(registered.resourceArns, {
      thing: "arn:aws:iot:us-east-1:000000000000:thing/SN-100",
      certificate: cert.certificateArn,
      policy: "arn:aws:iot:us-east-1:000000000000:policy/device-policy",
    });
    assert.equal(registered.certificatePem, cert.certificatePem);
    const thing = await f.client.send(new DescribeThingCommand({ thingName: "SN-100" }));
    assert.deepEqual(thing.attributes, { productKey: "pk1", serialNumber: "SN-100" });
    const principals = await f.client.send(new ListThingPrincipalsCommand({ thingName: "SN-100" }));
    assert.deepEqual(principals.principals, [cert.certificateArn]);
    const policies = await f.client.send(new ListAttachedPoliciesCommand({ target: cert.certificateArn }));
    assert.deepEqual(
      policies.policies?.map((p) => p.policyName),
      ["device-policy"],
    );
    assert.equal(f.emulator.state.certificate(cert.certificateId!)?.status, "ACTIVE");

    // Again for the same device with a new certificate: REPLACE updates the attributes.
    const next = await newCertificate("SN-100");
    await f.client.send(
      new RegisterThingCommand({
        templateBody: CVM_TEMPLATE,
        parameters: { SerialNumber: "SN-100", ProductKey: "pk2", CertificateId: next.certificateId! },
      }),
    );
    const updated = await f.client.send(new DescribeThingCommand({ thingName: "SN-100" }));
    assert.equal(updated.attributes?.productKey, "pk2");
    assert.equal(updated.version, 2);
    assert.equal(f.emulator.state.thingPrincipals("SN-100").length, 2);
  });

  it("RegisterThing with a CSR issues a certificate and creates a policy from a document", async () => {
    const templateBody = JSON.stringify({
      Parameters: { ThingName: { Type: "String" }, CSR: { Type: "String" } },
      Resources: {
        thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { Ref: "ThingName" } } },
        certificate: {
          Type: "AWS::IoT::Certificate",
          Properties: { CertificateSigningRequest: { Ref: "CSR" }, Status: "INACTIVE" },
        },
        policy: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument: POLICY } },
      },
    });
    const { csrPem } = opensslCsr("ec:P-384", "/CN=csr-device");
    const registered = await f.client.send(
      new RegisterThingCommand({ templateBody, parameters: { ThingName: "csr-device", CSR: csrPem } }),
    );
    assert.ok(registered.certificatePem);
    assert.equal(opensslVerify(f.emulator.rootCaPem, registered.certificatePem), true);
    const id = opensslCertificateId(registered.certificatePem);
    assert.equal(f.emulator.state.certificate(id)?.status, "INACTIVE");
    const policyName = registered.resourceArns?.policy?.split("/").pop() ?? "";
    assert.match(policyName, /^[0-9a-f]{64}$/);
    const document = f.emulator.state.policy(policyName)?.policyDocument ?? "";
    assert.equal(policyName, createHash("sha256").update(document).digest("hex"));
    assert.deepEqual(
      f.emulator.state.attachedPolicies(registered.resourceArns?.certificate ?? "").map((p) => p.policyName),
      [policyName],
    );
  });

  it("refuses template errors with InvalidRequestException and failed plans with ResourceRegistrationFailureException, leaving nothing behind", async () => {
    await sdkError(
      f.client.send(new RegisterThingCommand({ templateBody: "{not json" })),
      "InvalidRequestException",
    );
    await sdkError(
      f.client.send(
        new RegisterThingCommand({ templateBody: CVM_TEMPLATE, parameters: { SerialNumber: "x" } }),
      ),
      "InvalidRequestException",
    );
    const cert = await newCertificate("SN-200");
    const missingPolicy = CVM_TEMPLATE.replace("device-policy", "no-such-policy");
    const parameters = { SerialNumber: "SN-200", ProductKey: "pk", CertificateId: cert.certificateId! };
    await sdkError(
      f.client.send(new RegisterThingCommand({ templateBody: missingPolicy, parameters })),
      "ResourceRegistrationFailureException",
    );
    assert.equal(f.emulator.state.thing("SN-200"), undefined);
    assert.equal(f.emulator.state.certificate(cert.certificateId!)?.status, "INACTIVE");
    await sdkError(
      f.client.send(
        new RegisterThingCommand({
          templateBody: CVM_TEMPLATE,
          parameters: { ...parameters, CertificateId: "f".repeat(64) },
        }),
      ),
      "ResourceRegistrationFailureException",
    );
    assert.equal(f.emulator.state.thing("SN-200"), undefined);
  });

  it("applyProvisioningPlan honours a FAIL override in process (as JITP will call it)", async () => {
    const cert = await newCertificate("SN-300");
    const template = {
      Parameters: {
        Name: { Type: "String" },
        Color: { Type: "String" },
        "AWS::IoT::Certificate::Id": { Type: "String" },
      },
      Resources: {
        thing: {
          Type: "AWS::IoT::Thing",
          Properties: { ThingName: { Ref: "Name" }, AttributePayload: { color: { Ref: "Color" } } },
          OverrideSettings: { AttributePayload: "FAIL" },
        },
        certificate: {
          Type: "AWS::IoT::Certificate",
          Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" } },
        },
      },
    };
    const plan = (color: string) =>
      evaluateTemplate(
        template,
        { Name: "SN-300", Color: color },
        { certificate: { id: cert.certificateId! } },
      );
    const first = await applyProvisioningPlan(f.emulator.context, plan("red"));
    assert.equal(first.thingName, "SN-300");
    assert.equal(first.certificateId, cert.certificateId);
    await applyProvisioningPlan(f.emulator.context, plan("red"));
    await assert.rejects(
      applyProvisioningPlan(f.emulator.context, plan("blue")),
      (error: unknown) =>
        error instanceof IotServiceError && error.errorType === "ResourceRegistrationFailureException",
    );
    assert.equal(f.emulator.state.thing("SN-300")?.attributes.color, "red");
    assert.equal(f.emulator.state.thing("SN-300")?.version, 1);
  });

  it("creates, describes and lists provisioning templates", async () => {
    const created = await f.client.send(
      new CreateProvisioningTemplateCommand({
        templateName: "fleet-claim",
        templateBody: CVM_TEMPLATE,
        provisioningRoleArn: "arn:aws:iam::000000000000:role/Provisioning",
        enabled: true,
        description: "claim",
      }),
    );
    assert.equal(created.templateArn, "arn:aws:iot:us-east-1:000000000000:provisioningtemplate/fleet-claim");
    assert.equal(created.defaultVersionId, 1);
    const described = await f.client.send(
      new DescribeProvisioningTemplateCommand({ templateName: "fleet-claim" }),
    );
    assert.equal(described.templateBody, CVM_TEMPLATE);
    assert.equal(described.enabled, true);
    assert.equal(described.type, "FLEET_PROVISIONING");
    const listed = await f.client.send(new ListProvisioningTemplatesCommand({}));
    assert.deepEqual(
      listed.templates?.map((t) => t.templateName),
      ["fleet-claim"],
    );
    await sdkError(
      f.client.send(
        new CreateProvisioningTemplateCommand({
          templateName: "fleet-claim",
          templateBody: CVM_TEMPLATE,
          provisioningRoleArn: "arn:aws:iam::000000000000:role/Provisioning",
        }),
      ),
      "ResourceAlreadyExistsException",
    );
    await sdkError(
      f.client.send(
        new CreateProvisioningTemplateCommand({
          templateName: "bad name",
          templateBody: "{}",
          provisioningRoleArn: "arn:aws:iam::0:role/x-long-enough",
        }),
      ),
      "InvalidRequestException",
    );
    await sdkError(
      f.client.send(new DescribeProvisioningTemplateCommand({ templateName: "missing" })),
      "ResourceNotFoundException",
    );
  });

  it("DescribeEndpoint answers with the configured MQTT endpoint", async () => {
    const ats = await f.client.send(new DescribeEndpointCommand({ endpointType: "iot:Data-ATS" }));
    assert.equal(ats.endpointAddress, "mqtt.local.test");
    await sdkError(
      f.client.send(new DescribeEndpointCommand({ endpointType: "iot:Nope" })),
      "InvalidRequestException",
    );
  });
});
