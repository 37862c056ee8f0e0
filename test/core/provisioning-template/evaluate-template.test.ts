import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DomainError, ValidationError } from "#core/errors.ts";
import {
  describePlan,
  evaluateTemplate,
  MAX_TEMPLATE_BODY_LENGTH,
  validateTemplateName,
} from "#core/provisioning-template/index.ts";
import { CERT_ID, templateError, thingTemplate, valueTemplate } from "./fixtures.ts";

/** The complete example of AWS's provisioning template documentation (bulk registration). */
const AWS_BULK_EXAMPLE = `{
  "Parameters" : {
    "SerialNumber" : { "Type" : "String" },
    "Location" : { "Type" : "String", "Default" : "WA" },
    "CSR" : { "Type" : "String" }
  },
  "Resources" : {
    "thing" : {
      "Type" : "AWS::IoT::Thing",
      "Properties" : {
        "AttributePayload" : { "version" : "v1", "serialNumber" : {"Ref" : "SerialNumber"}},
        "ThingTypeName" : "lightBulb-versionA",
        "ThingGroups" : ["v1-lightbulbs", {"Ref" : "Location"}],
        "ThingName" : {"Ref" : "SerialNumber"}
      },
      "OverrideSettings" : { "AttributePayload" : "MERGE", "ThingTypeName" : "REPLACE", "ThingGroups" : "DO_NOTHING" }
    },
    "certificate" : {
      "Type" : "AWS::IoT::Certificate",
      "Properties" : { "CertificateSigningRequest": {"Ref" : "CSR"}, "Status" : "ACTIVE" }
    },
    "policy" : {
      "Type" : "AWS::IoT::Policy",
      "Properties" : {
        "PolicyDocument" : "{ \\"Version\\": \\"2012-10-17\\", \\"Statement\\": [{ \\"Effect\\": \\"Allow\\", \\"Action\\":[\\"iot:Publish\\"], \\"Resource\\": [\\"arn:aws:iot:us-east-1:123456789012:topic/foo/bar\\"] }] }"
      }
    }
  }
}`;

/** AWS's fleet provisioning example: Mappings, Fn::Join, Fn::FindInMap, DeviceConfiguration. */
const AWS_FLEET_EXAMPLE = {
  Parameters: { SerialNumber: { Type: "String" }, DeviceLocation: { Type: "String" } },
  Mappings: { LocationTable: { Seattle: { LocationUrl: "https://example.aws" } } },
  Resources: {
    thing: {
      Type: "AWS::IoT::Thing",
      Properties: {
        ThingName: { Ref: "SerialNumber" },
        AttributePayload: { version: "v1", serialNumber: "serialNumber" },
        ThingTypeName: { "Fn::Join": ["", ["ThingPrefix_", { Ref: "SerialNumber" }]] },
        ThingGroups: ["v1-lightbulbs", "WA"],
        BillingGroup: "LightBulbBillingGroup",
      },
      OverrideSettings: { AttributePayload: "MERGE", ThingTypeName: "REPLACE", ThingGroups: "DO_NOTHING" },
    },
    certificate: {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
    },
    policy: {
      Type: "AWS::IoT::Policy",
      Properties: {
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: ["iot:Publish"],
              Resource: ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"],
            },
          ],
        },
      },
    },
  },
  DeviceConfiguration: {
    FallbackUrl: "https://www.example.com/test-site",
    LocationUrl: { "Fn::FindInMap": ["LocationTable", { Ref: "DeviceLocation" }, "LocationUrl"] },
  },
};

describe("evaluateTemplate", () => {
  it("evaluates AWS's bulk registration example", () => {
    const plan = evaluateTemplate(AWS_BULK_EXAMPLE, {
      SerialNumber: "SN-1",
      CSR: "-----BEGIN CERTIFICATE REQUEST-----",
    });
    assert.equal(plan.thing?.thingName, "SN-1");
    assert.deepEqual(plan.thing?.thingGroups, ["v1-lightbulbs", "WA"]);
    assert.deepEqual(plan.thing?.overrideSettings, {
      AttributePayload: "MERGE",
      ThingTypeName: "REPLACE",
      ThingGroups: "DO_NOTHING",
    });
    assert.equal(plan.certificate?.certificateSigningRequest, "-----BEGIN CERTIFICATE REQUEST-----");
    assert.equal(JSON.parse(plan.policies[0]?.policyDocument ?? "").Statement[0].Action[0], "iot:Publish");
    assert.equal(plan.deviceConfiguration, undefined);
  });

  it("evaluates AWS's fleet provisioning example, with the certificate id from the certificate", () => {
    const template = {
      ...AWS_FLEET_EXAMPLE,
      Parameters: { ...AWS_FLEET_EXAMPLE.Parameters, "AWS::IoT::Certificate::Id": { Type: "String" } },
    };
    const plan = evaluateTemplate(
      template,
      { SerialNumber: "SN-2", DeviceLocation: "Seattle" },
      { certificate: { id: CERT_ID } },
    );
    assert.equal(plan.thing?.thingTypeName, "ThingPrefix_SN-2");
    assert.equal(plan.thing?.billingGroup, "LightBulbBillingGroup");
    assert.equal(plan.certificate?.certificateId, CERT_ID);
    assert.equal(plan.certificate?.status, "ACTIVE");
    assert.deepEqual(plan.deviceConfiguration, {
      FallbackUrl: "https://www.example.com/test-site",
      LocationUrl: "https://example.aws",
    });
  });

  it("accepts the body as text or as an object, with the same plan", () => {
    assert.deepEqual(
      evaluateTemplate(AWS_BULK_EXAMPLE, { SerialNumber: "a", CSR: "c" }),
      evaluateTemplate(JSON.parse(AWS_BULK_EXAMPLE), { SerialNumber: "a", CSR: "c" }),
    );
  });

  it("ignores Description and AWSTemplateFormatVersion", () => {
    const template = thingTemplate({}, { Description: "d", AWSTemplateFormatVersion: "2010-09-09" });
    assert.equal(evaluateTemplate(template, { SerialNumber: "a" }).thing?.thingName, "a");
  });

  it("writes numbers and booleans in DeviceConfiguration as strings", () => {
    const plan = evaluateTemplate(
      valueTemplate(5, { DeviceConfiguration: { port: 8883, tls: true, host: "h" } }),
      {},
    );
    assert.deepEqual(plan.deviceConfiguration, { port: "8883", tls: "true", host: "h" });
  });

  it("accepts a body of exactly the limit", () => {
    const base = JSON.stringify(thingTemplate());
    const padded = base.replace(
      /\}$/,
      `,"Description":"${"x".repeat(MAX_TEMPLATE_BODY_LENGTH - base.length - 17)}"}`,
    );
    assert.equal(padded.length, MAX_TEMPLATE_BODY_LENGTH);
    assert.equal(evaluateTemplate(padded, { SerialNumber: "a" }).thing?.thingName, "a");
    const error = templateError(() => evaluateTemplate(`${padded} `, { SerialNumber: "a" }));
    assert.equal(error.message, "templateBody: the template has 10241 characters; the limit is 10240");
  });

  const errors: Array<{ name: string; body: unknown; path: string; message: RegExp }> = [
    { name: "malformed JSON", body: '{"Resources": ', path: "templateBody", message: /malformed JSON/ },
    { name: "an empty body", body: "", path: "templateBody", message: /malformed JSON/ },
    { name: "a JSON list", body: "[]", path: "templateBody", message: /must be a JSON object, got a list/ },
    { name: "JSON null", body: "null", path: "templateBody", message: /must be a JSON object, got null/ },
    { name: "a number body", body: 5, path: "templateBody", message: /must be JSON text or an object/ },
    {
      name: "an oversized object body",
      body: { Resources: {}, Description: "x".repeat(MAX_TEMPLATE_BODY_LENGTH) },
      path: "templateBody",
      message: /the limit is 10240/,
    },
    {
      name: "an unknown section",
      body: { Resources: {}, Outputs: {} },
      path: "Outputs",
      message: /unknown template section/,
    },
    {
      name: "a template without resources",
      body: { Resources: {} },
      path: "Resources",
      message: /at least one resource/,
    },
    {
      name: "an unknown section first",
      body: { Conditions: {}, Resources: {} },
      path: "Conditions",
      message: /unknown template section/,
    },
    {
      name: "a Mappings list",
      body: valueTemplate("x", { Mappings: [] }),
      path: "Mappings",
      message: /must be an object/,
    },
    {
      name: "a mapping that is a string",
      body: valueTemplate("x", { Mappings: { M: "x" } }),
      path: "Mappings.M",
      message: /a mapping must be an object/,
    },
    {
      name: "a mapping key that is a list",
      body: valueTemplate("x", { Mappings: { M: { k: [] } } }),
      path: "Mappings.M.k",
      message: /must be an object/,
    },
    {
      name: "an intrinsic in Mappings",
      body: valueTemplate("x", { Mappings: { M: { k: { v: { Ref: "SerialNumber" } } } } }),
      path: "Mappings.M.k.v",
      message: /intrinsic functions are not allowed in Mappings/,
    },
    {
      name: "a null mapping value",
      body: valueTemplate("x", { Mappings: { M: { k: { v: null } } } }),
      path: "Mappings.M.k.v",
      message: /string or a list of strings/,
    },
    {
      name: "a DeviceConfiguration list",
      body: valueTemplate("x", { DeviceConfiguration: ["a"] }),
      path: "DeviceConfiguration",
      message: /must be an object/,
    },
    {
      name: "a nested DeviceConfiguration value",
      body: valueTemplate({ nested: "x" }),
      path: "DeviceConfiguration.value",
      message: /flat value/,
    },
    {
      name: "a null DeviceConfiguration value",
      body: valueTemplate(null),
      path: "DeviceConfiguration.value",
      message: /flat value/,
    },
  ];
  for (const { name, body, path, message } of errors) {
    it(`rejects ${name} (${path})`, () => {
      const error = templateError(() => evaluateTemplate(body as string, {}));
      assert.equal(error.path, path);
      assert.match(error.message, message);
    });
  }

  it("rejects an object body that is not JSON (a cycle, a BigInt)", () => {
    const cyclic: Record<string, unknown> = { Resources: {} };
    cyclic.self = cyclic;
    assert.match(
      templateError(() => evaluateTemplate(cyclic, {})).message,
      /^templateBody: the template object is not JSON/,
    );
    assert.equal(templateError(() => evaluateTemplate({ n: 1n }, {})).path, "templateBody");
  });
});

describe("TemplateError", () => {
  it("is a ValidationError (HTTP 400) with code INVALID_TEMPLATE and the path", () => {
    const error = templateError(() => evaluateTemplate("{", {}));
    assert.ok(error instanceof ValidationError);
    assert.ok(error instanceof DomainError);
    assert.equal(error.kind, "invalid");
    assert.equal(error.code, "INVALID_TEMPLATE");
    assert.equal(error.name, "TemplateError");
    assert.equal(error.path, "templateBody");
  });

  it("names the failing path first, as in the documentation example", () => {
    const template = {
      Resources: { thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { Ref: "Serial" } } } },
    };
    const error = templateError(() => evaluateTemplate(template, {}));
    assert.equal(error.message, 'Resources.thing.Properties.ThingName: Ref to unknown parameter "Serial"');
    assert.equal(error.path, "Resources.thing.Properties.ThingName");
  });
});

describe("validateTemplateName", () => {
  it("accepts letters, digits, _ and - up to 36 characters", () => {
    assert.equal(validateTemplateName("cvm-device_v2"), "cvm-device_v2");
    assert.equal(validateTemplateName("a".repeat(36)), "a".repeat(36));
  });

  for (const [name, message] of [
    ["", /non-empty string/],
    ["a".repeat(37), /37 characters; the limit is 36/],
    ["my template", /only letters, digits/],
    ["../etc", /only letters, digits/],
    [42, /non-empty string/],
  ] as const) {
    it(`rejects ${JSON.stringify(name)}`, () => {
      const error = templateError(() => validateTemplateName(name));
      assert.equal(error.path, "templateName");
      assert.match(error.message, message);
    });
  }
});

describe("describePlan", () => {
  it("says what the plan creates, one resource per line with details indented", () => {
    const template = {
      ...AWS_FLEET_EXAMPLE,
      Parameters: { ...AWS_FLEET_EXAMPLE.Parameters, "AWS::IoT::Certificate::Id": { Type: "String" } },
    };
    const plan = evaluateTemplate(
      template,
      { SerialNumber: "SN-2", DeviceLocation: "Seattle" },
      { certificate: { id: CERT_ID } },
    );
    const lines = describePlan(plan);
    assert.ok(lines.includes('Thing "SN-2" (resource thing)'), lines.join("\n"));
    assert.ok(lines.includes("  type: ThingPrefix_SN-2"));
    assert.ok(lines.includes("  attributes: version=v1, serialNumber=serialNumber"));
    assert.ok(lines.includes("  groups: v1-lightbulbs, WA"));
    assert.ok(lines.includes("  billing group: LightBulbBillingGroup"));
    assert.ok(
      lines.includes("  if it exists: AttributePayload MERGE, ThingTypeName REPLACE, ThingGroups DO_NOTHING"),
    );
    assert.ok(lines.includes(`Certificate (resource certificate): existing certificate ${CERT_ID}`));
    assert.ok(lines.some((line) => line.startsWith("Policy (resource policy): new policy")));
    assert.ok(lines.includes('The certificate is attached to thing "SN-2".'));
    assert.ok(lines.includes("  LocationUrl = https://example.aws"));
  });

  it("shortens long parameter values and names existing policies", () => {
    const plan = evaluateTemplate(AWS_BULK_EXAMPLE, {
      SerialNumber: "a",
      CSR: `-----BEGIN CERTIFICATE REQUEST-----\n${"A".repeat(300)}`,
    });
    const lines = describePlan(plan);
    const csrLine = lines.find((line) => line.startsWith("  CSR = ")) ?? "";
    assert.ok(csrLine.length <= 90 && csrLine.endsWith("..."), csrLine);
    assert.ok(lines.some((line) => line.includes("new certificate from a CSR")));
    const named = describePlan(
      evaluateTemplate(
        { Resources: { p: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "x" } } } },
        {},
      ),
    );
    assert.deepEqual(named, ['Policy "x" (resource p): existing policy, attached to the certificate']);
  });

  it("describes a PEM certificate with its CA", () => {
    const plan = evaluateTemplate(
      {
        Resources: {
          c: {
            Type: "AWS::IoT::Certificate",
            Properties: { CertificatePem: "PEM", CACertificatePem: "CA", Status: "INACTIVE" },
          },
        },
      },
      {},
    );
    assert.deepEqual(describePlan(plan), [
      "Certificate (resource c): register a PEM certificate (3 characters, with its CA certificate)",
      "  status: INACTIVE",
    ]);
  });
});
