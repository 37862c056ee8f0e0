import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App } from "aws-cdk-lib";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { AWS_DEFAULT_IOT_TPS } from "#core/admission/quota-profile.ts";
import { readOnrampConfig } from "#lib/config.ts";

const config = (context: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) =>
  readOnrampConfig(new App({ context }).node, env);

describe("lib/config", () => {
  it("defaults: agnostic environment, retained resources, AWS managed key, 100/200 throttling, own web ACL, thing/*", () => {
    assert.deepEqual(config(), {
      prefix: "IotOnramp",
      env: {},
      destroyOnRemoval: false,
      tableEncryption: "aws-managed",
      logRetention: RetentionDays.ONE_YEAR,
      thingNamePrefix: "",
      iotQuotas: { ...AWS_DEFAULT_IOT_TPS },
      phone: { rateLimit: 20, burstLimit: 40 },
      api: {
        rateLimit: 100,
        burstLimit: 200,
        waf: { mode: "create", rateLimit: 300 },
        executionLogLevel: "OFF",
        createCloudWatchRole: false,
      },
    });
  });

  it("phone API: phoneApiRateLimit/phoneApiBurstLimit, phoneUserPoolId (checked), no pool by default", () => {
    assert.deepEqual(config({ phoneApiRateLimit: "5", phoneApiBurstLimit: "9" }).phone, {
      rateLimit: 5,
      burstLimit: 9,
    });
    assert.equal(
      config({ phoneUserPoolId: "eu-west-1_AbC123" }).phone.existingUserPoolId,
      "eu-west-1_AbC123",
    );
    assert.throws(() => config({ phoneUserPoolId: "not a pool" }), /phoneUserPoolId/);
    assert.throws(() => config({ phoneApiRateLimit: "-1" }), /phoneApiRateLimit/);
  });

  it("WAF: waf=false turns it off, wafWebAclArn associates an existing one, wafRateLimit sets the limit", () => {
    const arn =
      "arn:aws:wafv2:eu-west-1:111111111111:regional/webacl/onramp/00000000-0000-0000-0000-000000000000";
    assert.deepEqual(config({ waf: "false" }).api.waf, { mode: "off" });
    assert.deepEqual(config({ wafWebAclArn: arn }).api.waf, { mode: "existing", webAclArn: arn });
    assert.deepEqual(config({ wafRateLimit: "1000" }).api.waf, { mode: "create", rateLimit: 1000 });
    assert.deepEqual(config({ waf: true }).api.waf, { mode: "create", rateLimit: 300 });
    assert.throws(() => config({ waf: "false", wafWebAclArn: arn }), /waf=false contradicts wafWebAclArn/);
    assert.throws(() => config({ waf: "off" }), /waf must be true or false/);
    assert.throws(() => config({ wafRateLimit: "9" }), /wafRateLimit/, "AWS WAF's minimum is 10");
    assert.throws(() => config({ wafRateLimit: "10.5" }), /wafRateLimit/);
    assert.throws(
      () => config({ wafWebAclArn: "arn:aws:wafv2:us-east-1:111111111111:global/webacl/x/y" }),
      /wafWebAclArn/,
    );
  });

  it("thingNamePrefix: any AWS IoT thing-name characters, nothing else", () => {
    assert.equal(config({ thingNamePrefix: "ACME-" }).thingNamePrefix, "ACME-");
    assert.equal(config({ thingNamePrefix: "line_2:" }).thingNamePrefix, "line_2:");
    assert.throws(() => config({ thingNamePrefix: "acme/*" }), /thingNamePrefix/);
    assert.throws(() => config({ thingNamePrefix: "a b" }), /thingNamePrefix/);
  });

  it("iotQuotas: AWS's defaults, or raised numbers by operation (others keep theirs); errors name the key", () => {
    assert.equal(config({ iotQuotas: "aws-default" }).iotQuotas.RegisterThing, 10);
    const raised = config({ iotQuotas: '{"RegisterThing":100,"UpdateCertificate":80}' }).iotQuotas;
    assert.equal(raised.RegisterThing, 100);
    assert.equal(raised.UpdateCertificate, 80);
    assert.equal(raised.CreateThing, 100);
    assert.throws(() => config({ iotQuotas: "fast" }), /Context iotQuotas/);
    assert.throws(() => config({ iotQuotas: '{"RegisterThing":0}' }), /iotQuotas.RegisterThing/);
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

  it("authorizerReservedConcurrency: absent by default, a whole number of at least 1 when set", () => {
    assert.equal("authorizerReservedConcurrency" in config(), false);
    assert.equal(config({ authorizerReservedConcurrency: "50" }).authorizerReservedConcurrency, 50);
    assert.equal(config({ authorizerReservedConcurrency: 7 }).authorizerReservedConcurrency, 7);
    for (const bad of ["0", "-1", "2.5", "many"]) {
      assert.throws(() => config({ authorizerReservedConcurrency: bad }), /authorizerReservedConcurrency/);
    }
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
