// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${iot:...}" is IoT policy variable syntax, not a JS template.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderConnectionPolicy } from "#core/authorizer/connection-policy.ts";
import {
  evaluatePolicies,
  type IotAction,
  type PolicyContext,
  parsePolicyDocument,
  topicArn,
  topicFilterArn,
} from "#local/mqtt/policy-engine.ts";
import {
  AUTHORIZER_POLICY_DOCUMENTS,
  DEVICE_POLICY_DOCUMENT,
  loadPolicyDocument,
} from "#templates/catalog.ts";

const scope = { region: "us-east-1", accountId: "000000000000" };

/** The binding topics a device uses: what it publishes, and the answers it subscribes to and receives. */
const bindingTopics = (base: string) => ({
  publish: [`${base}/thing/awss/enrollee/match`, `${base}/thing/reset`],
  answers: [`${base}/thing/awss/enrollee/match_reply`, `${base}/thing/reset_reply`],
});

function decide(policy: ReturnType<typeof parsePolicyDocument>, context: PolicyContext) {
  return (action: IotAction, topic: string) =>
    evaluatePolicies([policy], {
      action,
      resource: action === "iot:Subscribe" ? topicFilterArn(scope, topic) : topicArn(scope, topic),
      context,
    }).allowed;
}

function assertBindingTopics(
  allowed: (action: IotAction, topic: string) => boolean,
  own: string,
  other: string,
) {
  for (const [base, expected] of [
    [own, true],
    [other, false],
  ] as const) {
    const topics = bindingTopics(base);
    for (const topic of topics.publish)
      assert.equal(allowed("iot:Publish", topic), expected, `publish ${topic}`);
    for (const topic of topics.answers) {
      assert.equal(allowed("iot:Subscribe", topic), expected, `subscribe ${topic}`);
      assert.equal(allowed("iot:Receive", topic), expected, `receive ${topic}`);
    }
  }
}

/**
 * The shipped device policies already cover the binding topics (templates/policies/): a device may
 * report tokens and resets and get the answers on its own topics only, checked with the local
 * policy engine (the one the MQTT endpoint enforces).
 */
describe("device policies and the binding topics", () => {
  it("certificate devices: things/{thing}/sys/thing/... of their own thing only", () => {
    const policy = parsePolicyDocument("onramp-device-policy", loadPolicyDocument(DEVICE_POLICY_DOCUMENT));
    const context: PolicyContext = {
      clientId: "SN-1",
      thing: { thingName: "SN-1", attached: true },
      certificate: { subject: { commonName: "SN-1" }, issuer: { commonName: "CA" } },
    };
    assertBindingTopics(decide(policy, context), "things/SN-1/sys", "things/SN-2/sys");
  });

  it("secret-born devices: /sys/{pk}/{dn}/thing/... of their own product and name only", () => {
    const document = renderConnectionPolicy(loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.device), {
      productKey: "a1Lamp",
      deviceName: "lamp-01",
      clientId: "a1Lamp.lamp-01",
    });
    const policy = parsePolicyDocument("authorizer", document);
    assert.deepEqual(policy.problems, []);
    const allowed = decide(policy, { clientId: "a1Lamp.lamp-01" });
    assertBindingTopics(allowed, "/sys/a1Lamp/lamp-01", "/sys/a1Lamp/lamp-02");
    assertBindingTopics(allowed, "/sys/a1Lamp/lamp-01", "/sys/a1Other/lamp-01");
  });
});
