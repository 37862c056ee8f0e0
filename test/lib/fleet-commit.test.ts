// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { defaultFleetHookConfig } from "#core/fleet/authorize-fleet-provisioning.ts";
import {
  FLEET_COMMIT_DEAD_LETTER_RETENTION,
  FLEET_COMMIT_MAX_EVENT_AGE,
  FLEET_COMMIT_RETRY_ATTEMPTS,
  FLEET_COMMIT_TIMEOUT,
} from "#lib/constructs/fleet-commit.ts";
import { CLAIM_SETTLEMENT_ACTIONS } from "#lib/iam-grants.ts";
import { loadTopicRule, RULE_TARGETS } from "#templates/catalog.ts";
import { CLAIM_IOT_METHODS, iotAdapterActions } from "./adapter-calls.ts";
import {
  appWithContext,
  cfnText,
  defaultApp,
  fullOptionsApp,
  logicalIdAt,
  resourceAt,
} from "./app-fixture.ts";
import {
  assertEventInvokeConfig,
  assertRegistryEnvironment,
  assertRuleErrorsToDeadLetters,
  assertRuleInvokePermission,
  assertSharedFunctionSettings,
  assertTopicRule,
  IOT,
  statementsOf,
  TABLE_ARN,
} from "./function-assertions.ts";

describe("lib/constructs/fleet-commit", () => {
  const template = () => defaultApp().provisioningTemplate;
  const fn = () => resourceAt(template(), "AWS::Lambda::Function", "FleetCommitFunction").Properties;
  const fnId = () => logicalIdAt(template(), "AWS::Lambda::Function", "FleetCommitFunction");
  const queueId = () => logicalIdAt(template(), "AWS::SQS::Queue", "FleetCommitDeadLetters");

  it("runs fleet-commit on Node.js 22, arm64, with the shared settings", () => {
    assertSharedFunctionSettings(template(), "FleetCommit", "fleet-commit");
    assert.equal(fn().Timeout, FLEET_COMMIT_TIMEOUT.toSeconds());
    assert.ok(fn().Timeout * 1000 < defaultFleetHookConfig.claimTtlMs, "done before the claim goes stale");
  });

  it("sets every setting the shared wiring requires (lambdaServices reads all three)", () => {
    assertRegistryEnvironment(template(), "FleetCommit");
  });

  it("builds the topic rule from templates/rules/fleet-commit.json (presence connected), with the Lambda action", () => {
    const definition = loadTopicRule("fleet-commit");
    assert.equal(definition.target, RULE_TARGETS.fleetCommit);
    assert.equal(definition.sql, "SELECT * FROM '$aws/events/presence/connected/+'");
    assertTopicRule(template(), "FleetCommit", definition);
  });

  it("sends rule errors to its own encrypted, TLS-only dead-letter queue with a role that can only send there", () => {
    assertRuleErrorsToDeadLetters(template(), "FleetCommit", {
      ruleName: loadTopicRule("fleet-commit").ruleName,
      retention: FLEET_COMMIT_DEAD_LETTER_RETENTION,
      otherQueues: ["JitrDeadLetters"],
    });
  });

  it("retries failed invocations and sends what still fails to the same queue", () => {
    assertEventInvokeConfig(template(), "FleetCommit", {
      retryAttempts: FLEET_COMMIT_RETRY_ATTEMPTS,
      maxEventAge: FLEET_COMMIT_MAX_EVENT_AGE,
    });
  });

  it("lets only AWS IoT invoke the function, from this rule of this account", () => {
    assertRuleInvokePermission(template(), "FleetCommit");
  });

  it("grants exactly the commit's calls: no secrets, no things, no PutItem, nothing on Resource *", () => {
    const statements = statementsOf("FleetCommitRoleDefaultPolicy");
    const logs = Object.entries(statements).find(([, s]) => s.actions.includes("logs:PutLogEvents"));
    assert.ok(logs);
    assert.match(logs[1].resources[0]!, /^\$\{FleetCommitLogs[0-9A-F]+\.Arn\}$/);
    const sqs = Object.entries(statements).find(([, s]) => s.actions.includes("sqs:SendMessage"));
    assert.ok(sqs, "the on-failure destination may send to the queue");
    assert.deepEqual(sqs[1].resources, [`\${${queueId()}.Arn}`]);
    const { [logs[0]]: _logs, [sqs[0]]: _sqs, ...rest } = statements;
    assert.deepEqual(rest, {
      RegistryTableItems: { actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"], resources: [TABLE_ARN] },
      IotCertificates: {
        actions: [
          "iot:DeleteCertificate",
          "iot:DescribeCertificate",
          "iot:DetachPolicy",
          "iot:DetachThingPrincipal",
          "iot:ListAttachedPolicies",
          "iot:ListPrincipalThings",
          "iot:UpdateCertificate",
        ],
        resources: [`${IOT}:cert/*`],
      },
    });
  });

  it("covers every IoT call of settling or committing a fleet claim, and only those", () => {
    // The port the commit uses is ClaimDeps["iot"]: the adapter methods it picks are the ones read.
    const claims = readFileSync(new URL("../../lambdas/core/registry/claims.ts", import.meta.url), "utf8");
    const picked = /iot: Pick<IotProvisioning, ([^>]+)>/.exec(claims)?.[1]?.match(/"(\w+)"/g) ?? [];
    assert.ok(picked.length > 0);
    for (const method of picked) {
      assert.ok((CLAIM_IOT_METHODS as readonly string[]).includes(method.slice(1, -1)), method);
    }
    const called = iotAdapterActions(CLAIM_IOT_METHODS);
    assert.deepEqual([...called].sort(), [...CLAIM_SETTLEMENT_ACTIONS.certificate].sort());
    const granted = Object.values(statementsOf("FleetCommitRoleDefaultPolicy")).flatMap((s) => s.actions);
    for (const action of called) assert.ok(granted.includes(action), `${action} is not granted`);
  });

  it("covers finishing a certificate rotation (the switch on the new certificate's first connection)", () => {
    const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");
    // The commit finishes rotations, and finishRotation's AWS IoT port is the claim's.
    assert.match(read("lambdas/core/fleet/commit-fleet-provisioning.ts"), /await finishRotation\(deps, /);
    const rotation = read("lambdas/core/rotation/rotate-certificate.ts");
    assert.match(
      rotation,
      /export async function finishRotation\(\s*deps: ClaimDeps & \{ logger: Logger \},/,
      "finishRotation needs more than ClaimDeps: check the commit's grants",
    );
    const body = rotation.slice(rotation.indexOf("export async function finishRotation("));
    const iotCalls = [...body.matchAll(/deps\.iot\.(\w+)\(/g)].map((m) => m[1]!);
    assert.ok(iotCalls.includes("destroyCertificate"), "the previous certificate is destroyed");
    for (const method of iotCalls)
      assert.ok((CLAIM_IOT_METHODS as readonly string[]).includes(method), method);
    // Its registry writes are conditional updates (UpdateItem), already granted.
    const registry = read("lambdas/adapters/dynamodb-registry.ts");
    const complete = registry.slice(registry.indexOf("  async completeRotation("));
    assert.match(complete.slice(0, complete.indexOf("\n  }\n")), /this\.conditionalUpdate\(/);
    const granted = Object.values(statementsOf("FleetCommitRoleDefaultPolicy")).flatMap((s) => s.actions);
    for (const action of ["dynamodb:UpdateItem", "iot:DeleteCertificate", "iot:UpdateCertificate"]) {
      assert.ok(granted.includes(action), action);
    }
  });

  it("with a thing-name prefix, detaches a replaced certificate only from things under it", () => {
    const statements = statementsOf(
      "FleetCommitRoleDefaultPolicy",
      appWithContext("thing-prefix", { thingNamePrefix: "ACME-" }),
    );
    const bound = statements.IotCertificateToPrefixedThings;
    assert.deepEqual(bound?.actions, ["iot:DetachThingPrincipal"]);
    assert.deepEqual(bound?.resources, [`${IOT}:cert/*`]);
    const condition = bound?.condition as { ArnLike: Record<string, unknown> };
    assert.equal(cfnText(condition.ArnLike["iot:thingArn"]), `${IOT}:thing/ACME-*`);
    assert.ok(!statements.IotCertificates?.actions.includes("iot:DetachThingPrincipal"));
  });

  it("may use the table's customer managed key when there is one", () => {
    const statements = statementsOf("FleetCommitRoleDefaultPolicy", fullOptionsApp());
    assert.ok(statements.RegistryTableKey?.actions.includes("kms:Decrypt"));
    assert.ok(statements.RegistryTableKey?.actions.includes("kms:GenerateDataKey"));
    assert.equal(statementsOf("FleetCommitRoleDefaultPolicy").RegistryTableKey, undefined);
  });

  it("exports the function name, the dead-letter queue URL and the log group", () => {
    const outputs = template().toJSON().Outputs;
    assert.equal(cfnText(outputs.FleetCommitFunctionName.Value), `\${${fnId()}}`);
    assert.deepEqual(outputs.FleetCommitFunctionName.Export, { Name: "IotOnramp-FleetCommitFunctionName" });
    assert.equal(cfnText(outputs.FleetCommitDeadLetterQueueUrl.Value), `\${${queueId()}}`);
    assert.deepEqual(outputs.FleetCommitDeadLetterQueueUrl.Export, {
      Name: "IotOnramp-FleetCommitDeadLetterQueueUrl",
    });
    assert.match(cfnText(outputs.FleetCommitLogGroupName.Value), /^\$\{FleetCommitLogs[0-9A-F]+\}$/);
  });
});
