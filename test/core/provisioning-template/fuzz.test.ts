// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${...}" in plain strings is the provisioning template and IoT policy syntax under test, not a JS template.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  describePlan,
  evaluateTemplate,
  type ProvisioningPlan,
  TemplateError,
} from "#core/provisioning-template/index.ts";
import { valueTemplate } from "./fixtures.ts";

/** Message of the safety net in evaluateTemplate: seeing it means an unexpected exception (a bug). */
const UNEXPECTED = "could not be evaluated";

/** Evaluates and returns the plan, or the TemplateError; fails on anything else. */
function outcome(body: unknown, parameters: unknown, options?: unknown): ProvisioningPlan | TemplateError {
  try {
    return evaluateTemplate(body as string, parameters as Record<string, string>, options as never);
  } catch (error) {
    assert.ok(error instanceof TemplateError, `threw ${String(error)}`);
    assert.ok(!error.message.includes(UNEXPECTED), `unexpected exception: ${error.message}`);
    assert.ok(error.message.startsWith(error.path ? `${error.path}: ` : ""), error.message);
    return error;
  }
}

/** What every plan must satisfy, whatever template produced it. */
function checkPlan(plan: ProvisioningPlan): void {
  for (const value of Object.values(plan.parameters)) assert.equal(typeof value, "string");
  if (plan.thing) assert.match(plan.thing.thingName, /^[a-zA-Z0-9:_-]{1,128}$/);
  if (plan.certificate) {
    const sources = [
      plan.certificate.certificateId,
      plan.certificate.certificateSigningRequest,
      plan.certificate.certificatePem,
    ];
    assert.equal(sources.filter((s) => s !== undefined).length, 1);
    assert.ok(["ACTIVE", "INACTIVE"].includes(plan.certificate.status));
  }
  for (const policy of plan.policies) {
    assert.ok((policy.policyName === undefined) !== (policy.policyDocument === undefined));
    if (policy.policyDocument !== undefined) assert.equal(typeof JSON.parse(policy.policyDocument), "object");
  }
  for (const value of Object.values(plan.deviceConfiguration ?? {})) assert.equal(typeof value, "string");
  for (const line of describePlan(plan)) assert.equal(typeof line, "string");
}

const CERT_ID = "0123456789abcdef".repeat(4);
const NAMES = [
  "SerialNumber",
  "Location",
  "Groups",
  "Index",
  "CertificateId",
  "AWS::IoT::Certificate::CommonName",
  "constructor",
];
const text = fc.oneof(
  fc.constantFrom(
    "SN-1",
    "a,b,c",
    "",
    "0",
    "1",
    "WA",
    "M",
    "${SerialNumber}",
    "${iot:ClientId}",
    "${!x}",
    "${",
    "${}",
    "a b",
  ),
  fc.string({ maxLength: 12 }),
);

/** Arbitrary values: scalars, lists, objects and every intrinsic, well-formed or not. */
const { junk } = fc.letrec<{ junk: unknown }>((tie) => ({
  junk: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    text,
    fc.integer({ min: -2, max: 5 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("junk"), { maxLength: 3 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...NAMES), text), tie("junk"), { maxKeys: 3 }),
    fc.record({ Ref: fc.oneof(fc.constantFrom(...NAMES), tie("junk")) }),
    fc.record({ "Fn::Join": fc.oneof(fc.tuple(tie("junk"), tie("junk")), tie("junk")) }),
    fc.record({
      "Fn::Select": fc.tuple(fc.oneof(fc.integer({ min: -1, max: 3 }), tie("junk")), tie("junk")),
    }),
    fc.record({ "Fn::Split": fc.tuple(tie("junk"), tie("junk")) }),
    fc.record({ "Fn::FindInMap": fc.oneof(fc.tuple(tie("junk"), tie("junk"), tie("junk")), tie("junk")) }),
    fc.record({
      "Fn::Sub": fc.oneof(
        text,
        fc.tuple(tie("junk"), fc.dictionary(text, tie("junk"), { maxKeys: 2 })),
        tie("junk"),
      ),
    }),
    fc.record({ "Fn::GetAtt": tie("junk") }),
  ),
}));

/** Expressions that always evaluate to a valid registry name ([a-zA-Z0-9:_-], not starting with "-"). */
const { name } = fc.letrec<{ name: unknown }>((tie) => ({
  name: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom("SN-1", "WA", "g1", "dev_2", "x:y"),
    fc.constantFrom(
      { Ref: "SerialNumber" },
      { Ref: "Location" },
      { Ref: "AWS::IoT::Certificate::CommonName" },
    ),
    fc.record({
      "Fn::Join": fc.tuple(
        fc.constantFrom("-", "_", ""),
        fc.array(tie("name"), { minLength: 1, maxLength: 3 }),
      ),
    }),
    fc.record({
      "Fn::Select": fc.tuple(fc.constantFrom(0, 1, "1", { Ref: "Index" }), fc.constant({ Ref: "Groups" })),
    }),
    fc.record({
      "Fn::Select": fc.tuple(
        fc.constant(0),
        fc.record({ "Fn::Split": fc.tuple(fc.constant("-"), tie("name")) }),
      ),
    }),
    fc.constantFrom({ "Fn::Sub": "${SerialNumber}_x" }, { "Fn::Sub": "d${Location}" }),
    fc.record({ "Fn::Sub": fc.tuple(fc.constant("${a}-${Location}"), fc.record({ a: tie("name") })) }),
    fc.constant({ "Fn::FindInMap": ["Regions", { Ref: "Location" }, "group"] }),
  ),
}));

const validThing = fc.record(
  {
    Type: fc.constant("AWS::IoT::Thing"),
    Properties: fc.record(
      {
        ThingName: name,
        AttributePayload: fc.dictionary(fc.constantFrom("serialNumber", "version", "loc"), name, {
          maxKeys: 3,
        }),
        ThingTypeName: name,
        ThingGroups: fc.oneof(fc.array(name, { maxLength: 3 }), fc.constant({ Ref: "Groups" })),
        BillingGroup: name,
      },
      { requiredKeys: ["ThingName"] },
    ),
    OverrideSettings: fc.record(
      {
        AttributePayload: fc.constantFrom("DO_NOTHING", "REPLACE", "FAIL", "MERGE"),
        ThingGroups: fc.constantFrom("DO_NOTHING", "REPLACE", "FAIL", "MERGE"),
        ThingTypeName: fc.constantFrom("DO_NOTHING", "REPLACE", "FAIL"),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ["Type", "Properties"] },
);
const validCertificate = fc.record(
  {
    Type: fc.constant("AWS::IoT::Certificate"),
    Properties: fc
      .oneof(
        fc.constantFrom({ CertificateId: CERT_ID }, { CertificateId: { Ref: "CertificateId" } }),
        fc.record({ CertificateSigningRequest: name }),
        fc.record({ CertificatePem: name, CACertificatePem: name }, { requiredKeys: ["CertificatePem"] }),
      )
      .chain((properties) =>
        fc
          .option(fc.constantFrom("ACTIVE", "INACTIVE", "Active"), { nil: undefined })
          .map((Status) => (Status ? { ...properties, Status } : properties)),
      ),
    OverrideSettings: fc.record(
      { Status: fc.constantFrom("DO_NOTHING", "REPLACE", "FAIL") },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ["Type", "Properties"] },
);
const policyDocument = (resource: fc.Arbitrary<unknown>) =>
  fc.record({
    Version: fc.constant("2012-10-17"),
    Statement: fc.array(
      fc.record({
        Effect: fc.constant("Allow"),
        Action: fc.constantFrom("iot:Connect", ["iot:Publish", "iot:Receive"]),
        Resource: fc.array(
          fc.oneof(resource, fc.constant("arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}")),
          { maxLength: 2 },
        ),
      }),
      { maxLength: 2 },
    ),
  });
const validPolicy = fc.record({
  Type: fc.constant("AWS::IoT::Policy"),
  Properties: fc.oneof(
    fc.record({
      PolicyName: fc.constantFrom(
        "onramp-device-policy",
        "p_1",
        { "Fn::Join": ["-", ["a", { Ref: "Location" }]] },
        { "Fn::Sub": "p.${Location}" },
      ),
    }),
    fc.record({ PolicyDocument: policyDocument(name) }),
    fc.record({
      PolicyDocument: policyDocument(fc.string({ maxLength: 20 })).map((document) =>
        JSON.stringify(document),
      ),
    }),
  ),
});
/** A template every part of which is valid, so it must always give a plan. */
const validTemplate = fc.record(
  {
    Parameters: fc.constant({
      SerialNumber: { Type: "String" },
      Location: { Type: "String", Default: "WA" },
      Groups: { Type: "CommaDelimitedList", Default: "g1,g2" },
      Index: { Type: "Number", Default: "1" },
      CertificateId: { Type: "String", Default: CERT_ID },
      "AWS::IoT::Certificate::CommonName": { Type: "String", Default: "cn-1" },
    }),
    Mappings: fc.constant({ Regions: { WA: { group: "west" }, NY: { group: "east" } } }),
    Resources: fc.record(
      { thing: validThing, certificate: validCertificate, policy: validPolicy, second: validPolicy },
      { requiredKeys: ["policy"] },
    ),
    DeviceConfiguration: fc.dictionary(fc.constantFrom("thingName", "topic", "url"), name, { maxKeys: 3 }),
  },
  { requiredKeys: ["Parameters", "Mappings", "Resources"] },
);
const validParameters = fc.record(
  {
    SerialNumber: fc.constantFrom("SN-1", "dev_2", "x:y"),
    Location: fc.constantFrom("WA", "NY"),
    Groups: fc.constantFrom("a,b", "g,h,i"),
  },
  { requiredKeys: ["SerialNumber"] },
);

/** Replaces (or deletes) the `index`-th node of `value`, counted depth-first, with `replacement`. */
function mutate(value: unknown, index: number, replacement: unknown, remove: boolean): unknown {
  let counter = -1;
  const walk = (node: unknown): unknown => {
    counter++;
    if (counter === index) return replacement;
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node === "object" && node !== null) {
      const entries: [string, unknown][] = [];
      for (const [key, child] of Object.entries(node)) {
        const before = counter;
        const next = walk(child);
        if (remove && before + 1 === index) continue;
        entries.push([key, next]);
      }
      return Object.fromEntries(entries);
    }
    return node;
  };
  return walk(value);
}

describe("fuzzing evaluateTemplate", () => {
  it("random JSON-ish values as a body only ever give a plan or a TemplateError", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.anything(), fc.jsonValue(), fc.json(), fc.string()),
        fc.anything(),
        (body, params) => {
          const result = outcome(body, params);
          if (!(result instanceof TemplateError)) checkPlan(result);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("valid templates built from every part of the language always give a valid plan", () => {
    fc.assert(
      fc.property(validTemplate, validParameters, fc.boolean(), (body, params, withCertificate) => {
        const options = withCertificate ? { certificate: { id: CERT_ID, commonName: "cn-2" } } : undefined;
        const result = outcome(body, params, options);
        assert.ok(!(result instanceof TemplateError), result instanceof TemplateError ? result.message : "");
        checkPlan(result);
        // The body as text evaluates exactly like the body as an object.
        assert.deepEqual(outcome(JSON.stringify(body), params, options), result);
      }),
      { numRuns: 400 },
    );
  });

  it("valid templates with one part replaced by anything give a plan or a TemplateError", () => {
    fc.assert(
      fc.property(
        validTemplate,
        fc.oneof({ arbitrary: validParameters, weight: 9 }, { arbitrary: fc.anything(), weight: 1 }),
        fc.nat(200),
        junk,
        fc.boolean(),
        fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 6 },
          {
            arbitrary: fc.record(
              { id: fc.oneof(fc.constant(CERT_ID), text), commonName: text },
              { requiredKeys: ["id"] },
            ),
            weight: 3,
          },
          { arbitrary: fc.anything(), weight: 1 },
        ),
        (body, params, index, replacement, remove, cert) => {
          const mutated = mutate(body, index, replacement, remove);
          const options = cert === undefined ? undefined : { certificate: cert };
          const result = outcome(mutated, params, options);
          if (result instanceof TemplateError) return;
          checkPlan(result);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("random text as a body gives a TemplateError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (body) => {
        const result = outcome(body, {});
        assert.ok(result instanceof TemplateError || typeof result === "object");
      }),
      { numRuns: 300 },
    );
  });
});

describe("properties of the language", () => {
  it("Fn::Join(d, Fn::Split(d, s)) gives back s", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.string({ minLength: 1, maxLength: 3 }),
        (source, delimiter) => {
          const value = { "Fn::Join": [delimiter, { "Fn::Split": [delimiter, source] }] };
          assert.equal(evaluateTemplate(valueTemplate(value), {}).deviceConfiguration?.value, source);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("plain strings are kept exactly as written", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (value) => {
        assert.equal(evaluateTemplate(valueTemplate(value), {}).deviceConfiguration?.value, value);
      }),
      { numRuns: 200 },
    );
  });

  it("Fn::Sub of a string without ${ is the string itself", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 60 }).filter((s) => !s.includes("${")),
        (value) => {
          assert.equal(
            evaluateTemplate(valueTemplate({ "Fn::Sub": value }), {}).deviceConfiguration?.value,
            value,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it("Fn::Sub substitutes any parameter value verbatim, even one that looks like ${...}", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (value) => {
        const template = valueTemplate({ "Fn::Sub": "<${SerialNumber}>" });
        assert.equal(
          evaluateTemplate(template, { SerialNumber: value }).deviceConfiguration?.value,
          `<${value}>`,
        );
      }),
      { numRuns: 200 },
    );
  });
});
