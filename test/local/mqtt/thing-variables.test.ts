// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${iot:...}" is IoT policy variable syntax, not a JS template.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  evaluatePolicies,
  type IotAction,
  type PolicyContext,
  parsePolicyDocument,
  policyVariables,
  topicArn,
} from "#local/mqtt/policy-engine.ts";

const scope = { region: "us-east-1", accountId: "000000000000" };
const doc = (...statements: object[]) => JSON.stringify({ Version: "2012-10-17", Statement: statements });
const decide = (document: string, action: IotAction, resource: string, context: PolicyContext) =>
  evaluatePolicies([parsePolicyDocument("p", document)], { action, resource, context });

/** A client whose id names a thing; `attached` when its certificate is attached to that thing. */
const namingThing = (attached: boolean): PolicyContext => ({
  clientId: "victim-1",
  thing: { thingName: "victim-1", attached, thingTypeName: "sensor", attributes: { owner: "alice" } },
  certificate: { subject: { commonName: "intruder" }, issuer: { commonName: "CA" } },
});

describe("thing policy variables resolve only for the thing attached to the certificate", () => {
  const ownTopics = doc({
    Effect: "Allow",
    Action: "iot:Publish",
    Resource: "arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*",
  });
  const topic = topicArn(scope, "things/victim-1/commands");

  it("ThingName: the client id names the thing, but only an attached certificate gets it", () => {
    assert.equal(decide(ownTopics, "iot:Publish", topic, namingThing(true)).allowed, true);
    assert.deepEqual(decide(ownTopics, "iot:Publish", topic, namingThing(false)), {
      allowed: false,
      reason: "implicit-deny",
    });
  });

  it("ThingTypeName and Attributes[...] do not resolve either; IsAttached is false", () => {
    const variables = policyVariables(namingThing(false));
    assert.equal(variables.get("iot:Connection.Thing.ThingName"), undefined);
    assert.equal(variables.get("iot:Connection.Thing.ThingTypeName"), undefined);
    assert.equal(variables.get("iot:Connection.Thing.Attributes[owner]"), undefined);
    assert.equal(variables.get("iot:Connection.Thing.IsAttached"), "false");
    const attached = policyVariables(namingThing(true));
    assert.equal(attached.get("iot:Connection.Thing.ThingName"), "victim-1");
    assert.equal(attached.get("iot:Connection.Thing.ThingTypeName"), "sensor");
    assert.equal(attached.get("iot:Connection.Thing.Attributes[owner]"), "alice");
    assert.equal(attached.get("iot:Connection.Thing.IsAttached"), "true");

    const byAttribute = doc({
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: "*",
      Condition: { StringEquals: { "iot:Connection.Thing.Attributes[owner]": "alice" } },
    });
    assert.equal(decide(byAttribute, "iot:Publish", topic, namingThing(true)).allowed, true);
    assert.equal(decide(byAttribute, "iot:Publish", topic, namingThing(false)).allowed, false);
  });

  it("a variable's default applies when the thing is not attached", () => {
    const withDefault = doc({
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: "arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName, 'unattached'}/*",
    });
    assert.equal(
      decide(withDefault, "iot:Publish", topicArn(scope, "things/unattached/x"), namingThing(false)).allowed,
      true,
    );
    assert.equal(decide(withDefault, "iot:Publish", topic, namingThing(false)).allowed, false);
  });

  it("an unattached thing grants exactly what no thing at all grants (property)", () => {
    const name = fc.stringMatching(/^[A-Za-z0-9:_-]{1,12}$/);
    const variable = fc.constantFrom(
      "${iot:Connection.Thing.ThingName}",
      "${iot:Connection.Thing.ThingTypeName}",
      "${iot:Connection.Thing.Attributes[a]}",
      "${iot:ClientId}",
    );
    fc.assert(
      fc.property(
        name,
        name,
        variable,
        fc.constantFrom<IotAction>("iot:Publish", "iot:Receive"),
        (thing, other, v, action) => {
          const document = doc({ Effect: "Allow", Action: action, Resource: `arn:aws:iot:*:*:topic/t/${v}` });
          const base: PolicyContext = { clientId: thing };
          const unattached: PolicyContext = {
            ...base,
            thing: { thingName: thing, attached: false, thingTypeName: thing, attributes: { a: thing } },
          };
          for (const target of [thing, other]) {
            const resource = topicArn(scope, `t/${target}`);
            if (
              decide(document, action, resource, unattached).allowed !==
              decide(document, action, resource, base).allowed
            ) {
              return false;
            }
          }
          return true;
        },
      ),
    );
  });
});
