import assert from "node:assert/strict";
import { describe, it } from "node:test";
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
});
