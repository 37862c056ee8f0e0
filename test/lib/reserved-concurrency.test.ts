import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { appWithContext, defaultApp, resourceAt, type SynthesizedApp } from "./app-fixture.ts";

/** Reserved concurrency of the function at `{prefix}Function` (`Hook` is the fleet hook's scope). */
const reservedOf = (app: SynthesizedApp, prefix: string): number | undefined =>
  resourceAt(app.provisioningTemplate, "AWS::Lambda::Function", prefix).Properties
    .ReservedConcurrentExecutions;

const FUNCTIONS = {
  vend: "VendFunction",
  authorizer: "SecretDeviceAuthorizerFunction",
  fleetHook: "FleetHookFunction",
  jitr: "JitrFunction",
  fleetCommit: "FleetCommitFunction",
  rotation: "CertificateRotationFunction",
  register: "RegisterDeviceFunction",
} as const;

describe("reserved concurrency (lib/lambda-settings.ts)", () => {
  it("reserves for vending, the authorizer, the fleet hook and JITR by default; the others share the pool", () => {
    const app = defaultApp();
    assert.deepEqual(
      Object.fromEntries(Object.entries(FUNCTIONS).map(([name, prefix]) => [name, reservedOf(app, prefix)])),
      {
        vend: 50,
        authorizer: 100,
        fleetHook: 20,
        jitr: 5,
        fleetCommit: undefined,
        rotation: undefined,
        register: undefined,
      },
    );
    // 175 of a new account's 1,000: 825 stay unreserved (Lambda needs at least 100).
  });

  it("takes each reservation from context, and reserveConcurrency=false reserves none (JITR keeps its max concurrency)", () => {
    const custom = appWithContext("concurrency-custom", {
      vendReservedConcurrency: "80",
      fleetHookReservedConcurrency: "10",
      authorizerReservedConcurrency: "200",
      jitrReservedConcurrency: "8",
    });
    assert.equal(reservedOf(custom, FUNCTIONS.vend), 80);
    assert.equal(reservedOf(custom, FUNCTIONS.fleetHook), 10);
    assert.equal(reservedOf(custom, FUNCTIONS.authorizer), 200);
    assert.equal(reservedOf(custom, FUNCTIONS.jitr), 8);

    const none = appWithContext("concurrency-off", { reservedConcurrency: "false" });
    for (const prefix of Object.values(FUNCTIONS)) assert.equal(reservedOf(none, prefix), undefined, prefix);
    const mapping = Object.values(none.provisioningTemplate.findResources("AWS::Lambda::EventSourceMapping"));
    assert.deepEqual(
      mapping.map((m) => m.Properties.ScalingConfig),
      [{ MaximumConcurrency: 5 }],
    );
  });

  it("refuses reservations that leave fewer than 100 of the account's concurrency unreserved, naming the keys", () => {
    assert.throws(
      () => appWithContext("concurrency-small-account", { lambdaAccountConcurrency: "250" }),
      /Reserved concurrency 175 .* leaves 75 of lambdaAccountConcurrency 250 unreserved; Lambda needs at least 100/,
    );
    assert.throws(
      () => appWithContext("concurrency-bad", { vendReservedConcurrency: "lots" }),
      /Context vendReservedConcurrency must be a whole number/,
    );
    assert.throws(
      () => appWithContext("concurrency-bad-flag", { reservedConcurrency: "maybe" }),
      /Context reservedConcurrency must be true or false/,
    );
  });
});
