// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${iot:...}" is IoT policy variable syntax, not a JS template.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  clientArn,
  evaluatePolicies,
  type IotAction,
  type PolicyContext,
  parsePolicyDocument,
  topicArn,
  topicFilterArn,
} from "#local/mqtt/policy-engine.ts";
import { compilePattern } from "#local/mqtt/policy-patterns.ts";
import { DEVICE_POLICY_DOCUMENT, loadPolicyDocument } from "#templates/catalog.ts";

const scope = { region: "us-east-1", accountId: "000000000000" };
const devicePolicy = parsePolicyDocument("onramp-device-policy", loadPolicyDocument(DEVICE_POLICY_DOCUMENT));

/** A device connected as its own thing, with its certificate attached. */
const ownThing = (thingName: string, attached = true): PolicyContext => ({
  clientId: thingName,
  thing: { thingName, attached },
  certificate: { subject: { commonName: thingName }, issuer: { commonName: "Test CA" } },
});

const doc = (...statements: object[]) => JSON.stringify({ Version: "2012-10-17", Statement: statements });
const allowed = (
  documents: string[],
  action: IotAction,
  resource: string,
  context: PolicyContext = ownThing("dev-1"),
) =>
  evaluatePolicies(
    documents.map((d, i) => parsePolicyDocument(`p${i}`, d)),
    { action, resource, context },
  ).allowed;

describe("policy engine: the shipped device policy", () => {
  const decide = (action: IotAction, resource: string, context = ownThing("SN-1")) =>
    evaluatePolicies([devicePolicy], { action, resource, context });

  it("parses without problems", () => {
    assert.deepEqual(devicePolicy.problems, []);
    assert.equal(devicePolicy.statements.length, 3);
  });

  it("lets a device connect only as its own thing, with its certificate attached", () => {
    assert.deepEqual(decide("iot:Connect", clientArn(scope, "SN-1")), {
      allowed: true,
      reason: "allowed",
      policyName: "onramp-device-policy",
      sid: "ConnectAsOwnThingOnly",
    });
    assert.equal(decide("iot:Connect", clientArn(scope, "SN-1"), ownThing("SN-1", false)).allowed, false);
    const noThing: PolicyContext = { clientId: "SN-1" };
    assert.equal(decide("iot:Connect", clientArn(scope, "SN-1"), noThing).reason, "implicit-deny");
    assert.equal(decide("iot:Connect", clientArn(scope, "SN-2")).allowed, false);
  });

  it("scopes publish, receive and subscribe to the thing's topics and shadow", () => {
    for (const action of ["iot:Publish", "iot:Receive"] as const) {
      assert.equal(decide(action, topicArn(scope, "things/SN-1/telemetry")).allowed, true);
      assert.equal(decide(action, topicArn(scope, "$aws/things/SN-1/shadow/update")).allowed, true);
      assert.equal(decide(action, topicArn(scope, "things/SN-2/telemetry")).allowed, false);
      assert.equal(decide(action, topicArn(scope, "things/SN-1")).allowed, false);
      assert.equal(decide(action, topicArn(scope, "$aws/things/SN-2/shadow/update")).allowed, false);
    }
    assert.equal(decide("iot:Subscribe", topicFilterArn(scope, "things/SN-1/#")).allowed, true);
    assert.equal(decide("iot:Subscribe", topicFilterArn(scope, "things/+/telemetry")).allowed, false);
    assert.equal(decide("iot:Subscribe", topicFilterArn(scope, "things/SN-2/#")).allowed, false);
    assert.equal(
      decide("iot:Publish", topicFilterArn(scope, "things/SN-1/x")).allowed,
      false,
      "wrong ARN type",
    );
  });

  it("never lets a thing name widen a resource, even one with * or ?", () => {
    // Thing names are [a-zA-Z0-9:_-]; * and ? are added to check they stay literal.
    const thingName = fc.stringMatching(/^[A-Za-z0-9:_*?-]{1,12}$/);
    fc.assert(
      fc.property(thingName, thingName, (name, other) => {
        fc.pre(name !== other);
        const context = ownThing(name);
        assert.equal(
          evaluatePolicies([devicePolicy], {
            action: "iot:Publish",
            resource: topicArn(scope, `things/${other}/x`),
            context,
          }).allowed,
          false,
        );
        assert.equal(
          evaluatePolicies([devicePolicy], {
            action: "iot:Publish",
            resource: topicArn(scope, `things/${name}/x`),
            context,
          }).allowed,
          true,
        );
      }),
    );
  });
});

describe("policy engine: variables", () => {
  const context: PolicyContext = {
    clientId: "client-7",
    certificate: {
      subject: { commonName: "SN-7", organization: "Acme", country: "DE" },
      issuer: { commonName: "Acme CA" },
    },
  };
  const one = (resource: string) =>
    doc({ Effect: "Allow", Action: "iot:Publish", Resource: `arn:aws:iot:*:*:topic/${resource}` });

  it("resolves client id, certificate subject and issuer", () => {
    const topic = (t: string) => topicArn(scope, t);
    assert.equal(allowed([one("c/${iot:ClientId}")], "iot:Publish", topic("c/client-7"), context), true);
    assert.equal(allowed([one("c/${iot:ClientId}")], "iot:Publish", topic("c/client-8"), context), false);
    assert.equal(
      allowed([one("d/${iot:Certificate.Subject.CommonName}/*")], "iot:Publish", topic("d/SN-7/up"), context),
      true,
    );
    assert.equal(
      allowed(
        [one("o/${iot:Certificate.Subject.Organization}/${iot:Certificate.Issuer.CommonName}")],
        "iot:Publish",
        topic("o/Acme/Acme CA"),
        context,
      ),
      true,
    );
  });

  it("makes a resource with an unresolvable variable match nothing, unless it has a default", () => {
    const topic = topicArn(scope, "t/");
    assert.equal(allowed([one("t/${iot:Connection.Thing.ThingName}")], "iot:Publish", topic, context), false);
    assert.equal(
      allowed([one("t/*${iot:Certificate.Subject.Locality}")], "iot:Publish", topic, context),
      false,
    );
    assert.equal(allowed([one("t/${iot:Unknown.Variable}")], "iot:Publish", topic, context), false);
    assert.equal(
      allowed(
        [one("t/${iot:Connection.Thing.ThingName, 'none'}")],
        "iot:Publish",
        topicArn(scope, "t/none"),
        context,
      ),
      true,
    );
  });

  it("treats ${*}, ${?} and ${$} as literal characters and resolved values as literal text", () => {
    const variables = new Map([["iot:ClientId", "a*"]]);
    const pattern = compilePattern("t/${iot:ClientId}/${*}${?}${$}", { wildcards: true, variables });
    assert.equal(pattern?.test("t/a*/*?$"), true);
    assert.equal(pattern?.test("t/abc/*?$"), false);
    assert.equal(pattern?.test("t/a*/xy$"), false);
  });
});

describe("policy engine: actions, resources, effects", () => {
  const publish = topicArn(scope, "a/b");

  it("matches actions case-insensitively with wildcards, as a string or an array", () => {
    assert.equal(
      allowed([doc({ Effect: "Allow", Action: "iot:*", Resource: "*" })], "iot:Subscribe", publish),
      true,
    );
    assert.equal(
      allowed([doc({ Effect: "Allow", Action: "IOT:publish", Resource: "*" })], "iot:Publish", publish),
      true,
    );
    assert.equal(
      allowed([doc({ Effect: "Allow", Action: "iot:Pub*", Resource: "*" })], "iot:Publish", publish),
      true,
    );
    assert.equal(
      allowed([doc({ Effect: "Allow", Action: "iot:Pub*", Resource: "*" })], "iot:Receive", publish),
      false,
    );
    const both = doc({ Effect: "Allow", Action: ["iot:Receive", "iot:Publish"], Resource: "*" });
    assert.equal(allowed([both], "iot:Publish", publish), true);
    assert.equal(allowed([both], "iot:Connect", clientArn(scope, "x")), false);
  });

  it("matches resources with * (across /) and ? wildcards, case-sensitively", () => {
    const policy = doc({
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: ["arn:aws:iot:*:*:topic/a/*", "arn:aws:iot:us-east-1:000000000000:topic/b/?"],
    });
    assert.equal(allowed([policy], "iot:Publish", topicArn(scope, "a/b/c/d")), true);
    assert.equal(allowed([policy], "iot:Publish", topicArn(scope, "b/1")), true);
    assert.equal(allowed([policy], "iot:Publish", topicArn(scope, "b/12")), false);
    assert.equal(allowed([policy], "iot:Publish", topicArn(scope, "A/b")), false);
    assert.equal(
      allowed([policy], "iot:Publish", topicArn({ region: "eu-west-1", accountId: "1" }, "b/1")),
      false,
      "another account and region",
    );
  });

  it("denies by default and lets an explicit Deny win over any Allow, in any policy", () => {
    assert.deepEqual(
      evaluatePolicies([], { action: "iot:Publish", resource: publish, context: ownThing("x") }),
      {
        allowed: false,
        reason: "implicit-deny",
      },
    );
    const allowAll = doc({ Effect: "Allow", Action: "iot:*", Resource: "*" });
    const denyA = doc({
      Sid: "NoA",
      Effect: "Deny",
      Action: "iot:Publish",
      Resource: "arn:aws:iot:*:*:topic/a/*",
    });
    const decision = evaluatePolicies(
      [parsePolicyDocument("allow", allowAll), parsePolicyDocument("deny", denyA)],
      { action: "iot:Publish", resource: publish, context: ownThing("x") },
    );
    assert.deepEqual(decision, { allowed: false, reason: "explicit-deny", policyName: "deny", sid: "NoA" });
    assert.equal(allowed([allowAll, denyA], "iot:Publish", topicArn(scope, "c/d")), true);
  });

  it("supports NotAction and NotResource", () => {
    const notConnect = doc({ Effect: "Allow", NotAction: "iot:Connect", Resource: "*" });
    assert.equal(allowed([notConnect], "iot:Publish", publish), true);
    assert.equal(allowed([notConnect], "iot:Connect", clientArn(scope, "x")), false);
    const notSecret = doc({
      Effect: "Allow",
      Action: "iot:Publish",
      NotResource: "arn:aws:iot:*:*:topic/secret/*",
    });
    assert.equal(allowed([notSecret], "iot:Publish", publish), true);
    assert.equal(allowed([notSecret], "iot:Publish", topicArn(scope, "secret/x")), false);
  });

  it("skips malformed statements and reports them, keeping the well-formed ones", () => {
    const parsed = parsePolicyDocument(
      "mixed",
      JSON.stringify({
        Statement: [
          { Effect: "Maybe", Action: "iot:*", Resource: "*" },
          { Effect: "Allow", Action: "iot:*" },
          { Effect: "Allow", Action: "iot:Publish", Resource: [1] },
          { Effect: "Allow", Action: "iot:Publish", Resource: "*" },
        ],
      }),
    );
    assert.equal(parsed.statements.length, 1);
    assert.equal(parsed.problems.length, 3);
    assert.match(parsed.problems[0] ?? "", /Statement\[0\]: Effect/);
    assert.deepEqual(parsePolicyDocument("bad", "{nope").problems, ["the document is not JSON"]);
    assert.deepEqual(parsePolicyDocument("empty", "{}").problems, ["the document has no Statement"]);
    const single = parsePolicyDocument("one", {
      Statement: { Effect: "Allow", Action: "iot:*", Resource: "*" },
    });
    assert.equal(single.statements.length, 1);
  });
});

describe("policy engine: conditions", () => {
  const withCondition = (Condition: object, Effect = "Allow") =>
    doc({ Effect, Action: "iot:Connect", Resource: "*", Condition });
  const connect = (policies: string[], context: PolicyContext) =>
    allowed(policies, "iot:Connect", clientArn(scope, context.clientId), context);

  it("Bool on iot:Connection.Thing.IsAttached", () => {
    const attachedOnly = withCondition({ Bool: { "iot:Connection.Thing.IsAttached": "true" } });
    assert.equal(connect([attachedOnly], ownThing("t1")), true);
    assert.equal(connect([attachedOnly], ownThing("t1", false)), false);
    assert.equal(connect([attachedOnly], { clientId: "t1" }), false, "no thing: not attached");
    const jsonBoolean = withCondition({ Bool: { "iot:Connection.Thing.IsAttached": true } });
    assert.equal(connect([jsonBoolean], ownThing("t1")), true);
    const denyDetached = withCondition({ Bool: { "iot:Connection.Thing.IsAttached": "false" } }, "Deny");
    const allowAll = doc({ Effect: "Allow", Action: "iot:*", Resource: "*" });
    assert.equal(connect([allowAll, denyDetached], ownThing("t1", false)), false);
    assert.equal(connect([allowAll, denyDetached], ownThing("t1")), true);
  });

  it("StringEquals, StringLike and their negations, with variables in values", () => {
    const context = ownThing("SN-42");
    assert.equal(
      connect([withCondition({ StringEquals: { "iot:ClientId": ["x", "SN-42"] } })], context),
      true,
    );
    assert.equal(
      connect([withCondition({ StringEquals: { "iot:clientid": "SN-42" } })], context),
      true,
      "key case",
    );
    assert.equal(connect([withCondition({ StringEquals: { "iot:ClientId": "sn-42" } })], context), false);
    assert.equal(
      connect([withCondition({ StringEqualsIgnoreCase: { "iot:ClientId": "sn-42" } })], context),
      true,
    );
    assert.equal(connect([withCondition({ StringLike: { "iot:ClientId": "SN-*" } })], context), true);
    assert.equal(connect([withCondition({ StringNotLike: { "iot:ClientId": "SN-*" } })], context), false);
    assert.equal(connect([withCondition({ StringNotEquals: { "iot:ClientId": "other" } })], context), true);
    const sameAsCn = withCondition({
      StringEquals: { "iot:ClientId": "${iot:Certificate.Subject.CommonName}" },
    });
    assert.equal(connect([sameAsCn], context), true);
    assert.equal(connect([sameAsCn], { ...context, clientId: "other" }), false);
  });

  it("treats missing keys as IAM does (positive false, negated true, IfExists skips, Null)", () => {
    const noThing: PolicyContext = { clientId: "c" };
    const key = "iot:Connection.Thing.ThingName";
    assert.equal(connect([withCondition({ StringEquals: { [key]: "c" } })], noThing), false);
    assert.equal(connect([withCondition({ StringNotEquals: { [key]: "c" } })], noThing), true);
    assert.equal(connect([withCondition({ StringEqualsIfExists: { [key]: "zzz" } })], noThing), true);
    assert.equal(connect([withCondition({ StringEqualsIfExists: { [key]: "zzz" } })], ownThing("c")), false);
    assert.equal(connect([withCondition({ Null: { [key]: "true" } })], noThing), true);
    assert.equal(connect([withCondition({ Null: { [key]: "true" } })], ownThing("c")), false);
  });

  it("fails closed on an operator it does not know", () => {
    const allowAll = doc({ Effect: "Allow", Action: "iot:*", Resource: "*" });
    const unknown = { DateGreaterThan: { "aws:CurrentTime": "2020-01-01T00:00:00Z" } };
    assert.equal(connect([withCondition(unknown)], ownThing("c")), false, "an Allow with it never applies");
    assert.equal(
      connect([allowAll, withCondition(unknown, "Deny")], ownThing("c")),
      false,
      "a Deny always does",
    );
  });
});
