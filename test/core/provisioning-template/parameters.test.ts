import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CERTIFICATE_PARAMETERS, evaluateTemplate } from "#core/provisioning-template/index.ts";
import { CERT_ID, templateError, thingTemplate } from "./fixtures.ts";

const jitpTemplate = {
  Parameters: {
    "AWS::IoT::Certificate::CommonName": { Type: "String" },
    "AWS::IoT::Certificate::Id": { Type: "String" },
    "AWS::IoT::Certificate::Country": { Type: "String", Default: "unknown" },
  },
  Resources: {
    thing: {
      Type: "AWS::IoT::Thing",
      Properties: {
        ThingName: { Ref: "AWS::IoT::Certificate::CommonName" },
        AttributePayload: { country: { Ref: "AWS::IoT::Certificate::Country" } },
      },
    },
    certificate: {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" } },
    },
  },
};

describe("parameters", () => {
  it("uses given values, then Defaults, and reports every declared parameter", () => {
    const template = thingTemplate(
      { AttributePayload: { location: { Ref: "Location" } } },
      { Parameters: { SerialNumber: { Type: "String" }, Location: { Type: "String", Default: "WA" } } },
    );
    const plan = evaluateTemplate(template, { SerialNumber: "SN-1", Unused: "ignored" });
    assert.deepEqual(plan.parameters, { SerialNumber: "SN-1", Location: "WA" });
    assert.deepEqual(plan.thing?.attributePayload, { location: "WA" });
    const overridden = evaluateTemplate(template, { SerialNumber: "SN-1", Location: "OR" });
    assert.equal(overridden.parameters.Location, "OR");
  });

  it("accepts a numeric Default and a Number parameter", () => {
    const template = thingTemplate(
      {},
      {
        Parameters: { SerialNumber: { Type: "String" }, Port: { Type: "Number", Default: 8883 } },
      },
    );
    assert.equal(evaluateTemplate(template, { SerialNumber: "a" }).parameters.Port, "8883");
    assert.equal(evaluateTemplate(template, { SerialNumber: "a", Port: "-1.5" }).parameters.Port, "-1.5");
  });

  it("names a declared parameter that has no value and no Default", () => {
    const error = templateError(() => evaluateTemplate(thingTemplate(), {}));
    assert.equal(error.path, "Parameters.SerialNumber");
    assert.equal(
      error.message,
      "Parameters.SerialNumber: no value given for this parameter and it has no Default",
    );
  });

  it("a parameter named like an Object.prototype member is just a parameter", () => {
    const body = JSON.stringify(
      thingTemplate(
        { ThingTypeName: { Ref: "constructor" }, AttributePayload: { proto: { Ref: "__proto__" } } },
        {
          Parameters: {
            SerialNumber: { Type: "String" },
            constructor: { Type: "String" },
            PROTO: { Type: "String", Default: "p" },
          },
        },
      ),
    ).replace('"PROTO"', '"__proto__"');
    const given = JSON.parse('{"SerialNumber":"SN-1","constructor":"sensor"}') as Record<string, string>;
    const plan = evaluateTemplate(body, given);
    assert.equal(plan.thing?.thingTypeName, "sensor");
    assert.deepEqual(plan.thing?.attributePayload, { proto: "p" });
    assert.ok(Object.hasOwn(plan.parameters, "__proto__"));
    const error = templateError(() => evaluateTemplate(body, { SerialNumber: "SN-1" }));
    assert.equal(error.path, "Parameters.constructor");
  });

  describe("JITP certificate parameters", () => {
    it("fill AWS::IoT::Certificate::* from the certificate, Defaults for what it lacks", () => {
      const plan = evaluateTemplate(jitpTemplate, {}, { certificate: { id: CERT_ID, commonName: "SN-42" } });
      assert.equal(plan.thing?.thingName, "SN-42");
      assert.equal(plan.certificate?.certificateId, CERT_ID);
      assert.deepEqual(plan.thing?.attributePayload, { country: "unknown" });
      assert.deepEqual(plan.parameters, {
        "AWS::IoT::Certificate::CommonName": "SN-42",
        "AWS::IoT::Certificate::Id": CERT_ID,
        "AWS::IoT::Certificate::Country": "unknown",
      });
    });

    it("the certificate's value wins over a Default and over a given parameter", () => {
      const plan = evaluateTemplate(
        jitpTemplate,
        { "AWS::IoT::Certificate::Country": "FR" },
        { certificate: { id: CERT_ID, commonName: "SN-42", country: "DE" } },
      );
      assert.deepEqual(plan.thing?.attributePayload, { country: "DE" });
    });

    it("fail when the certificate lacks a value declared without Default", () => {
      const error = templateError(() => evaluateTemplate(jitpTemplate, {}, { certificate: { id: CERT_ID } }));
      assert.equal(error.path, "Parameters.AWS::IoT::Certificate::CommonName");
      assert.match(error.message, /the certificate has no value for this parameter and it has no Default/);
    });

    it("map every CertificateParameters field", () => {
      const fields = {
        id: CERT_ID,
        commonName: "cn",
        country: "c",
        organization: "o",
        organizationalUnit: "ou",
        distinguishedNameQualifier: "dnq",
        stateName: "st",
        serialNumber: "sn",
      };
      const Parameters = Object.fromEntries(
        Object.values(CERTIFICATE_PARAMETERS).map((name) => [name, { Type: "String" }]),
      );
      const template = {
        Parameters,
        Resources: { policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "p" } } },
      };
      const plan = evaluateTemplate(template, {}, { certificate: fields });
      for (const [field, name] of Object.entries(CERTIFICATE_PARAMETERS)) {
        assert.equal(plan.parameters[name], fields[field as keyof typeof fields]);
      }
    });
  });

  const errors: Array<{
    name: string;
    parameters: unknown;
    given?: unknown;
    certificate?: unknown;
    path: string;
    message: RegExp;
  }> = [
    { name: "a Parameters list", parameters: [], path: "Parameters", message: /must be an object/ },
    {
      name: "a declaration that is a string",
      parameters: { A: "String" },
      path: "Parameters.A",
      message: /must be an object/,
    },
    {
      name: "a declaration without Type",
      parameters: { A: {} },
      path: "Parameters.A.Type",
      message: /Type must be one of String, Number, CommaDelimitedList/,
    },
    {
      name: "an unsupported Type",
      parameters: { A: { Type: "AWS::EC2::VPC::Id" } },
      path: "Parameters.A.Type",
      message: /Type must be one of/,
    },
    {
      name: "an unknown attribute",
      parameters: { A: { Type: "String", default: "x" } },
      path: "Parameters.A.default",
      message: /unknown parameter attribute/,
    },
    {
      name: "a list Default",
      parameters: { A: { Type: "String", Default: ["x"] } },
      path: "Parameters.A.Default",
      message: /Default must be a string/,
    },
    {
      name: "a non-number value for a Number",
      parameters: { A: { Type: "Number" } },
      given: { A: "ten" },
      path: "Parameters.A",
      message: /is not a Number/,
    },
    {
      name: "a non-object parameters argument",
      parameters: {},
      given: "A=1",
      path: "parameters",
      message: /must be an object of strings/,
    },
    {
      name: "a non-string given value",
      parameters: {},
      given: { A: 1 },
      path: "parameters.A",
      message: /must be a string, got a number/,
    },
    {
      name: "a certificate without id",
      parameters: {},
      certificate: { commonName: "x" },
      path: "certificate.id",
      message: /certificate id is required/,
    },
    {
      name: "a non-string certificate field",
      parameters: {},
      certificate: { id: "x", country: 1 },
      path: "certificate.country",
      message: /must be a string/,
    },
    {
      name: "a certificate that is a string",
      parameters: {},
      certificate: "x",
      path: "certificate",
      message: /must be an object/,
    },
  ];
  for (const { name, parameters, given, certificate, path, message } of errors) {
    it(`rejects ${name} (${path})`, () => {
      const template = {
        Parameters: parameters,
        Resources: { policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "p" } } },
      };
      const options = certificate === undefined ? undefined : { certificate: certificate as never };
      const error = templateError(() =>
        evaluateTemplate(template, (given ?? {}) as Record<string, string>, options),
      );
      assert.equal(error.path, path);
      assert.match(error.message, message);
    });
  }
});
