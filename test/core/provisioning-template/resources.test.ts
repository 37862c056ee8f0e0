// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${...}" in plain strings is the provisioning template and IoT policy syntax under test, not a JS template.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { evaluateTemplate } from "#core/provisioning-template/index.ts";
import { CERT_ID, templateError, thingTemplate } from "./fixtures.ts";

const POLICY = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Action: "iot:Connect",
      Resource: "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}",
    },
  ],
};

function withResources(resources: Record<string, unknown>, parameters: Record<string, unknown> = {}) {
  return { Parameters: parameters, Resources: resources };
}
const certificate = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  withResources({ certificate: { Type: "AWS::IoT::Certificate", Properties: properties, ...extra } });
const policy = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  withResources({ policy: { Type: "AWS::IoT::Policy", Properties: properties, ...extra } });

describe("AWS::IoT::Thing", () => {
  it("plans name, attributes, type, groups and billing group", () => {
    const template = thingTemplate(
      {
        AttributePayload: { version: "v1", serialNumber: { Ref: "SerialNumber" }, count: 3, on: true },
        ThingTypeName: "lightBulb-versionA",
        ThingGroups: ["v1-lightbulbs", { Ref: "Location" }],
        BillingGroup: "LightBulbBillingGroup",
      },
      { Parameters: { SerialNumber: { Type: "String" }, Location: { Type: "String", Default: "WA" } } },
    );
    assert.deepEqual(evaluateTemplate(template, { SerialNumber: "SN-1" }).thing, {
      logicalId: "thing",
      thingName: "SN-1",
      attributePayload: { version: "v1", serialNumber: "SN-1", count: "3", on: "true" },
      thingTypeName: "lightBulb-versionA",
      thingGroups: ["v1-lightbulbs", "WA"],
      billingGroup: "LightBulbBillingGroup",
      overrideSettings: {},
    });
  });

  it("takes ThingGroups from a list parameter", () => {
    const template = thingTemplate(
      { ThingGroups: { Ref: "Groups" } },
      {
        Parameters: { SerialNumber: { Type: "String" }, Groups: { Type: "CommaDelimitedList" } },
      },
    );
    assert.deepEqual(evaluateTemplate(template, { SerialNumber: "a", Groups: "g1,g2" }).thing?.thingGroups, [
      "g1",
      "g2",
    ]);
  });

  it("keeps OverrideSettings, MERGE for AttributePayload and ThingGroups", () => {
    const template = thingTemplate({}, {});
    (template.Resources.thing as Record<string, unknown>).OverrideSettings = {
      AttributePayload: "MERGE",
      ThingGroups: "MERGE",
      ThingTypeName: "REPLACE",
      BillingGroup: "FAIL",
    };
    assert.deepEqual(evaluateTemplate(template, { SerialNumber: "a" }).thing?.overrideSettings, {
      AttributePayload: "MERGE",
      ThingGroups: "MERGE",
      ThingTypeName: "REPLACE",
      BillingGroup: "FAIL",
    });
  });
});

describe("AWS::IoT::Certificate", () => {
  it("from an existing id, ACTIVE by default", () => {
    assert.deepEqual(evaluateTemplate(certificate({ CertificateId: CERT_ID }), {}).certificate, {
      logicalId: "certificate",
      certificateId: CERT_ID,
      status: "ACTIVE",
      overrideSettings: {},
    });
  });

  it("from a CSR, status written in any case", () => {
    const plan = evaluateTemplate(
      certificate({ CertificateSigningRequest: "-----BEGIN CERTIFICATE REQUEST-----", Status: "Inactive" }),
      {},
    );
    assert.equal(plan.certificate?.certificateSigningRequest, "-----BEGIN CERTIFICATE REQUEST-----");
    assert.equal(plan.certificate?.status, "INACTIVE");
  });

  it("from a PEM with its CA PEM, with Status override", () => {
    const plan = evaluateTemplate(
      certificate(
        { CertificatePem: "PEM", CACertificatePem: "CA" },
        { OverrideSettings: { Status: "DO_NOTHING" } },
      ),
      {},
    );
    assert.equal(plan.certificate?.certificatePem, "PEM");
    assert.equal(plan.certificate?.caCertificatePem, "CA");
    assert.deepEqual(plan.certificate?.overrideSettings, { Status: "DO_NOTHING" });
  });
});

describe("AWS::IoT::Policy", () => {
  it("by name", () => {
    assert.deepEqual(evaluateTemplate(policy({ PolicyName: "onramp-device-policy" }), {}).policies, [
      { logicalId: "policy", policyName: "onramp-device-policy" },
    ]);
  });

  it("a document given as an object or as a JSON string becomes the same compact string", () => {
    const fromObject = evaluateTemplate(policy({ PolicyDocument: POLICY }), {}).policies[0]?.policyDocument;
    const fromString = evaluateTemplate(policy({ PolicyDocument: JSON.stringify(POLICY, null, 2) }), {})
      .policies[0]?.policyDocument;
    assert.equal(fromObject, JSON.stringify(POLICY));
    assert.equal(fromString, fromObject);
  });

  it("keeps policy variables in documents untouched, and evaluates intrinsics in object documents", () => {
    const document = {
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: "iot:Publish",
          Resource: [
            "arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*",
            { "Fn::Sub": "arn:aws:iot:*:*:topic/fleet/${SerialNumber}/${iot:ClientId}" },
          ],
        },
      ],
    };
    const template = withResources(
      { policy: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument: document } } },
      {
        SerialNumber: { Type: "String" },
      },
    );
    const text = evaluateTemplate(template, { SerialNumber: "SN-1" }).policies[0]?.policyDocument ?? "";
    assert.deepEqual(JSON.parse(text).Statement[0].Resource, [
      "arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*",
      "arn:aws:iot:*:*:topic/fleet/SN-1/${iot:ClientId}",
    ]);
    const asString = withResources(
      { policy: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument: JSON.stringify(POLICY) } } },
      {},
    );
    assert.match(
      evaluateTemplate(asString, {}).policies[0]?.policyDocument ?? "",
      /\$\{iot:Connection\.Thing\.ThingName\}/,
    );
  });

  it("several policies keep their order", () => {
    const template = withResources({
      b: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "b" } },
      a: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "a" } },
    });
    assert.deepEqual(
      evaluateTemplate(template, {}).policies.map((p) => p.policyName),
      ["b", "a"],
    );
  });
});

describe("resource errors", () => {
  const cases: Array<{ name: string; template: object; path: string; message: RegExp }> = [
    {
      name: "a missing Resources",
      template: { Parameters: {} },
      path: "Resources",
      message: /needs a Resources object/,
    },
    {
      name: "an empty Resources",
      template: { Resources: {} },
      path: "Resources",
      message: /at least one resource/,
    },
    {
      name: "a resource that is a string",
      template: withResources({ thing: "AWS::IoT::Thing" }),
      path: "Resources.thing",
      message: /must be an object/,
    },
    {
      name: "an unknown resource attribute",
      template: withResources({ thing: { Type: "AWS::IoT::Thing", Properties: {}, DependsOn: "x" } }),
      path: "Resources.thing.DependsOn",
      message: /unknown resource attribute/,
    },
    {
      name: "an unknown resource type",
      template: withResources({ bucket: { Type: "AWS::S3::Bucket", Properties: {} } }),
      path: "Resources.bucket.Type",
      message: /unknown resource type "AWS::S3::Bucket"/,
    },
    {
      name: "a resource without Type",
      template: withResources({ thing: { Properties: {} } }),
      path: "Resources.thing.Type",
      message: /unknown resource type null/,
    },
    {
      name: "a resource without Properties",
      template: withResources({ thing: { Type: "AWS::IoT::Thing" } }),
      path: "Resources.thing.Properties",
      message: /needs a Properties object/,
    },
    {
      name: "an unknown property",
      template: thingTemplate({ Thingname: "x" }),
      path: "Resources.thing.Properties.Thingname",
      message: /unknown property of AWS::IoT::Thing/,
    },
    {
      name: "a thing without ThingName",
      template: withResources({ thing: { Type: "AWS::IoT::Thing", Properties: {} } }),
      path: "Resources.thing.Properties.ThingName",
      message: /needs a ThingName/,
    },
    {
      name: "a thing name with a space",
      template: withResources({ thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: "my thing" } } }),
      path: "Resources.thing.Properties.ThingName",
      message: /not a valid thing name/,
    },
    {
      name: "an empty thing name",
      template: withResources({ thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: "" } } }),
      path: "Resources.thing.Properties.ThingName",
      message: /not a valid thing name/,
    },
    {
      name: "a list ThingName",
      template: withResources({ thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: ["a"] } } }),
      path: "Resources.thing.Properties.ThingName",
      message: /expected a string, got a list/,
    },
    {
      name: "two things",
      template: withResources({
        one: { Type: "AWS::IoT::Thing", Properties: { ThingName: "a" } },
        two: { Type: "AWS::IoT::Thing", Properties: { ThingName: "b" } },
      }),
      path: "Resources.two",
      message: /at most one AWS::IoT::Thing \("one" is one\)/,
    },
    {
      name: "an AttributePayload list",
      template: thingTemplate({ AttributePayload: ["a"] }),
      path: "Resources.thing.Properties.AttributePayload",
      message: /must be an object/,
    },
    {
      name: "a nested attribute",
      template: thingTemplate({ AttributePayload: { a: { b: "c" } } }),
      path: "Resources.thing.Properties.AttributePayload.a",
      message: /flat value/,
    },
    {
      name: "an attribute name with a space",
      template: thingTemplate({ AttributePayload: { "a b": "c" } }),
      path: "Resources.thing.Properties.AttributePayload.a b",
      message: /not a valid attribute name/,
    },
    {
      name: "an attribute value with a space",
      template: thingTemplate({ AttributePayload: { org: "Acme Corp" } }),
      path: "Resources.thing.Properties.AttributePayload.org",
      message: /not a valid attribute value/,
    },
    {
      name: "ThingGroups as a string",
      template: thingTemplate({ ThingGroups: "g1" }),
      path: "Resources.thing.Properties.ThingGroups",
      message: /must be a list/,
    },
    {
      name: "a thing group that is a number",
      template: thingTemplate({ ThingGroups: ["g", 1] }),
      path: "Resources.thing.Properties.ThingGroups[1]",
      message: /must be a string/,
    },
    {
      name: "a thing group with a slash",
      template: thingTemplate({ ThingGroups: ["a/b"] }),
      path: "Resources.thing.Properties.ThingGroups[0]",
      message: /not a valid thing group name/,
    },
    {
      name: "an empty ThingTypeName",
      template: thingTemplate({ ThingTypeName: "" }),
      path: "Resources.thing.Properties.ThingTypeName",
      message: /not a valid thing type name/,
    },
    {
      name: "a BillingGroup with a space",
      template: thingTemplate({ BillingGroup: "a b" }),
      path: "Resources.thing.Properties.BillingGroup",
      message: /not a valid billing group name/,
    },
    {
      name: "OverrideSettings as a string",
      template: {
        ...thingTemplate(),
        Resources: {
          thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: "a" }, OverrideSettings: "MERGE" },
        },
      },
      path: "Resources.thing.OverrideSettings",
      message: /must be an object/,
    },
    {
      name: "MERGE for ThingTypeName",
      template: {
        ...thingTemplate(),
        Resources: {
          thing: {
            Type: "AWS::IoT::Thing",
            Properties: { ThingName: "a" },
            OverrideSettings: { ThingTypeName: "MERGE" },
          },
        },
      },
      path: "Resources.thing.OverrideSettings.ThingTypeName",
      message: /MERGE is only valid for ThingGroups and AttributePayload/,
    },
    {
      name: "MERGE for a certificate Status",
      template: certificate({ CertificateId: CERT_ID }, { OverrideSettings: { Status: "MERGE" } }),
      path: "Resources.certificate.OverrideSettings.Status",
      message: /MERGE is only valid/,
    },
    {
      name: "an unknown override action",
      template: {
        ...thingTemplate(),
        Resources: {
          thing: {
            Type: "AWS::IoT::Thing",
            Properties: { ThingName: "a" },
            OverrideSettings: { ThingGroups: "UPSERT" },
          },
        },
      },
      path: "Resources.thing.OverrideSettings.ThingGroups",
      message: /must be one of DO_NOTHING, REPLACE, FAIL, MERGE/,
    },
    {
      name: "an override for ThingName",
      template: {
        ...thingTemplate(),
        Resources: {
          thing: {
            Type: "AWS::IoT::Thing",
            Properties: { ThingName: "a" },
            OverrideSettings: { ThingName: "REPLACE" },
          },
        },
      },
      path: "Resources.thing.OverrideSettings.ThingName",
      message: /no overridable property "ThingName"/,
    },
    {
      name: "a certificate without a source",
      template: certificate({ Status: "ACTIVE" }),
      path: "Resources.certificate.Properties",
      message: /needs one of CertificateSigningRequest, CertificateId, CertificatePem/,
    },
    {
      name: "a certificate with two sources",
      template: certificate({ CertificateId: CERT_ID, CertificateSigningRequest: "csr" }),
      path: "Resources.certificate.Properties",
      message: /exactly one of .*found CertificateSigningRequest, CertificateId/,
    },
    {
      name: "a CA PEM without a PEM",
      template: certificate({ CertificateId: CERT_ID, CACertificatePem: "ca" }),
      path: "Resources.certificate.Properties.CACertificatePem",
      message: /only allowed together with CertificatePem/,
    },
    {
      name: "an empty CA PEM",
      template: certificate({ CertificatePem: "pem", CACertificatePem: " " }),
      path: "Resources.certificate.Properties.CACertificatePem",
      message: /must not be empty/,
    },
    {
      name: "a certificate status REVOKED",
      template: certificate({ CertificateId: CERT_ID, Status: "REVOKED" }),
      path: "Resources.certificate.Properties.Status",
      message: /ACTIVE or INACTIVE/,
    },
    {
      name: "a short certificate id",
      template: certificate({ CertificateId: "abc" }),
      path: "Resources.certificate.Properties.CertificateId",
      message: /64 hex characters/,
    },
    {
      name: "an empty CSR",
      template: certificate({ CertificateSigningRequest: "" }),
      path: "Resources.certificate.Properties.CertificateSigningRequest",
      message: /must not be empty/,
    },
    {
      name: "an unknown certificate property",
      template: certificate({ CertificateID: CERT_ID }),
      path: "Resources.certificate.Properties.CertificateID",
      message: /unknown property of AWS::IoT::Certificate/,
    },
    {
      name: "two certificates",
      template: withResources({
        a: { Type: "AWS::IoT::Certificate", Properties: { CertificateId: CERT_ID } },
        b: { Type: "AWS::IoT::Certificate", Properties: { CertificateId: CERT_ID } },
      }),
      path: "Resources.b",
      message: /at most one AWS::IoT::Certificate/,
    },
    {
      name: "a policy without name or document",
      template: policy({}),
      path: "Resources.policy.Properties",
      message: /needs PolicyName or PolicyDocument/,
    },
    {
      name: "a policy with name and document",
      template: policy({ PolicyName: "p", PolicyDocument: POLICY }),
      path: "Resources.policy.Properties",
      message: /not both/,
    },
    {
      name: "a policy name with a space",
      template: policy({ PolicyName: "my policy" }),
      path: "Resources.policy.Properties.PolicyName",
      message: /not a valid policy name/,
    },
    {
      name: "a policy document that is not JSON",
      template: policy({ PolicyDocument: "{Version:" }),
      path: "Resources.policy.Properties.PolicyDocument",
      message: /not valid JSON/,
    },
    {
      name: "a policy document that is a list",
      template: policy({ PolicyDocument: "[]" }),
      path: "Resources.policy.Properties.PolicyDocument",
      message: /must be a JSON object, got a list/,
    },
    {
      name: "a policy document without Statement",
      template: policy({ PolicyDocument: { Version: "2012-10-17" } }),
      path: "Resources.policy.Properties.PolicyDocument",
      message: /no Statement/,
    },
    {
      name: "a policy document over 2,048 characters",
      template: policy({ PolicyDocument: { Statement: [], Pad: "x".repeat(2100) } }),
      path: "Resources.policy.Properties.PolicyDocument",
      message: /the limit is 2048/,
    },
    {
      name: "OverrideSettings on a policy",
      template: policy({ PolicyName: "p" }, { OverrideSettings: {} }),
      path: "Resources.policy.OverrideSettings",
      message: /not available for policies/,
    },
  ];
  for (const { name, template, path, message } of cases) {
    it(`rejects ${name} (${path})`, () => {
      const error = templateError(() => evaluateTemplate(template, { SerialNumber: "SN-1" }));
      assert.equal(error.path, path);
      assert.match(error.message, message);
    });
  }
});
