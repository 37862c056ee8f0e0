import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rotationTopics } from "#core/rotation/ports.ts";
import { DEVICE_POLICY_DOCUMENT, DEVICE_POLICY_NAME, loadPolicyDocument } from "#templates/catalog.ts";
import { defaultApp, resourceAt } from "./app-fixture.ts";

describe("lib/constructs/device-policy", () => {
  it("creates the shared IoT policy from templates/policies/device-policy.json, unchanged", () => {
    const policy = resourceAt(
      defaultApp().provisioningTemplate,
      "AWS::IoT::Policy",
      "DevicePolicy",
    ).Properties;
    assert.equal(policy.PolicyName, DEVICE_POLICY_NAME);
    assert.deepEqual(policy.PolicyDocument, JSON.parse(loadPolicyDocument(DEVICE_POLICY_DOCUMENT)));
  });

  it("is the policy the provisioning templates attach by name", () => {
    assert.equal(defaultApp().provisioning.devicePolicy.policyName, "onramp-device-policy");
    const outputs = defaultApp().provisioningTemplate.toJSON().Outputs;
    assert.equal(outputs.DevicePolicyName.Value, DEVICE_POLICY_NAME);
    assert.deepEqual(outputs.DevicePolicyName.Export, { Name: "IotOnramp-DevicePolicyName" });
  });

  it("lets a device use certificate rotation on its own topics only", () => {
    type Statement = { Effect: string; Action: string | string[]; Resource: string | string[] };
    const document = JSON.parse(loadPolicyDocument(DEVICE_POLICY_DOCUMENT)) as { Statement: Statement[] };
    const asList = (v: string | string[]) => (Array.isArray(v) ? v : [v]);
    /** Whether the policy allows `action` on `resource` for a connection whose thing is `thing`. */
    const allows = (thing: string, action: string, resource: string) =>
      document.Statement.some(
        (s) =>
          s.Effect === "Allow" &&
          asList(s.Action).includes(action) &&
          asList(s.Resource).some((pattern) => {
            // IoT policy resources: `*` matches any characters, `/` included; the variable is the thing.
            // biome-ignore lint/suspicious/noTemplateCurlyInString: the IoT policy variable, verbatim.
            const concrete = pattern.replaceAll("${iot:Connection.Thing.ThingName}", thing);
            const regex = concrete
              .split("*")
              .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
              .join(".*");
            return new RegExp(`^${regex}$`).test(resource);
          }),
      );
    const arn = (kind: string, name: string) => `arn:aws:iot:eu-west-1:111111111111:${kind}/${name}`;
    const answers = [rotationTopics.accepted, rotationTopics.rejected, rotationTopics.required];
    assert.ok(allows("TH-0001", "iot:Publish", arn("topic", rotationTopics.request("TH-0001"))));
    for (const answer of answers) {
      assert.ok(allows("TH-0001", "iot:Subscribe", arn("topicfilter", answer("TH-0001"))));
      assert.ok(allows("TH-0001", "iot:Receive", arn("topic", answer("TH-0001"))));
    }
    // The filter the README tells devices to subscribe to.
    assert.ok(allows("TH-0001", "iot:Subscribe", arn("topicfilter", "things/TH-0001/certificates/rotate/+")));
    // Never another device's rotation.
    assert.ok(!allows("TH-0001", "iot:Publish", arn("topic", rotationTopics.request("TH-0002"))));
    assert.ok(!allows("TH-0001", "iot:Receive", arn("topic", rotationTopics.accepted("TH-0002"))));
    assert.ok(!allows("TH-0001", "iot:Subscribe", arn("topicfilter", rotationTopics.accepted("TH-0002"))));
  });
});
