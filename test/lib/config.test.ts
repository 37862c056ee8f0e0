import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App } from "aws-cdk-lib";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { readOnrampConfig } from "#lib/config.ts";

const config = (context: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) =>
  readOnrampConfig(new App({ context }).node, env);

describe("lib/config", () => {
  it("defaults: agnostic environment, retained resources, AWS managed key, 10/20 throttling", () => {
    assert.deepEqual(config(), {
      prefix: "IotOnramp",
      env: {},
      destroyOnRemoval: false,
      tableEncryption: "aws-managed",
      logRetention: RetentionDays.ONE_YEAR,
      api: { rateLimit: 10, burstLimit: 20, executionLogLevel: "OFF", createCloudWatchRole: false },
    });
  });

  it("takes the CLI's account and region only as a pair; context wins", () => {
    assert.deepEqual(config({}, { CDK_DEFAULT_REGION: "us-east-1" }).env, {});
    assert.deepEqual(
      config({}, { CDK_DEFAULT_ACCOUNT: "111111111111", CDK_DEFAULT_REGION: "eu-west-1" }).env,
      {
        account: "111111111111",
        region: "eu-west-1",
      },
    );
    assert.deepEqual(config({ region: "eu-central-1" }, { CDK_DEFAULT_REGION: "us-east-1" }).env, {
      region: "eu-central-1",
    });
  });

  it("parses command-line strings and rejects bad values by key", () => {
    const parsed = config({ destroyOnRemoval: "true", apiRateLimit: "2.5", logRetentionDays: "30" });
    assert.equal(parsed.destroyOnRemoval, true);
    assert.equal(parsed.api.rateLimit, 2.5);
    assert.equal(parsed.logRetention, RetentionDays.ONE_MONTH);
    assert.throws(() => config({ destroyOnRemoval: "yes" }), /destroyOnRemoval/);
    assert.throws(() => config({ apiBurstLimit: "0" }), /apiBurstLimit/);
    assert.throws(() => config({ logRetentionDays: "31" }), /logRetentionDays/);
    assert.throws(() => config({ tableEncryption: "none" }), /tableEncryption/);
    assert.throws(() => config({ domainName: "vend.example.com" }), /certificateArn/);
    assert.throws(() => config({ prefix: "1bad" }), /prefix/);
  });
});
