import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_PREFIX,
  exportName,
  OUTPUT_STACK,
  OUTPUTS,
  type OutputName,
  PROVISIONING_OUTPUTS,
  REGISTRY_OUTPUTS,
  STACK_NAMES,
  stackNames,
} from "#lib/outputs.ts";
import { defaultApp, fullOptionsApp } from "./app-fixture.ts";

describe("lib/outputs: the names the onramp CLI reads", () => {
  it("names the stacks {prefix}-Registry and {prefix}-Provisioning", () => {
    assert.deepEqual(STACK_NAMES, { registry: "IotOnramp-Registry", provisioning: "IotOnramp-Provisioning" });
    assert.equal(DEFAULT_PREFIX, "IotOnramp");
    assert.deepEqual(stackNames("Dev"), { registry: "Dev-Registry", provisioning: "Dev-Provisioning" });
    const { registry, provisioning } = defaultApp();
    assert.equal(registry.stackName, STACK_NAMES.registry);
    assert.equal(provisioning.stackName, STACK_NAMES.provisioning);
  });

  it("has the keys the CLI relies on", () => {
    assert.equal(OUTPUTS.vendApiUrl, "VendApiUrl");
    assert.equal(OUTPUTS.tableName, "RegistryTableName");
    assert.equal(OUTPUTS.productSecretPrefix, "ProductSecretPrefix");
    assert.equal(OUTPUTS.registryKeySecretName, "RegistryKeySecretName");
    assert.equal(OUTPUTS.jitpRoleArn, "JitpRoleArn");
  });

  it("is exactly the set of outputs each stack declares, with {prefix}-{key} exports", () => {
    const declared = (template: ReturnType<typeof defaultApp>["registryTemplate"]) =>
      Object.entries(template.toJSON().Outputs as Record<string, { Export?: { Name: string } }>)
        // Outputs CDK adds by itself (the RestApi's endpoint) have no export of ours.
        .filter(
          ([, output]) =>
            output.Export?.Name.startsWith(`${DEFAULT_PREFIX}-`) && !output.Export.Name.includes(":"),
        )
        .map(([key, output]) => {
          assert.equal(output.Export?.Name, `${DEFAULT_PREFIX}-${key}`);
          return key;
        })
        .sort();
    const { registryTemplate, provisioningTemplate } = fullOptionsApp();
    assert.deepEqual(declared(registryTemplate), Object.values(REGISTRY_OUTPUTS).sort());
    assert.deepEqual(declared(provisioningTemplate), Object.values(PROVISIONING_OUTPUTS).sort());
    // Without a custom domain there is no CustomDomainTarget; everything else is always there.
    const defaults = declared(defaultApp().provisioningTemplate);
    assert.deepEqual(
      defaults,
      Object.values(PROVISIONING_OUTPUTS)
        .filter((k) => k !== PROVISIONING_OUTPUTS.customDomainTarget)
        .sort(),
    );
  });

  it("says which stack holds each output, and builds export names", () => {
    assert.equal(OUTPUT_STACK.tableName, "registry");
    assert.equal(OUTPUT_STACK.jitpRoleArn, "provisioning");
    assert.equal(Object.keys(OUTPUT_STACK).length, Object.keys(OUTPUTS).length);
    const values = Object.values(OUTPUTS);
    assert.equal(new Set(values).size, values.length, "keys are unique across the stacks");
    assert.equal(
      exportName("IotOnramp", "claimPolicyName" satisfies OutputName),
      "IotOnramp-ClaimPolicyName",
    );
  });
});
