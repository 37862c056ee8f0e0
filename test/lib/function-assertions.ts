// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
/**
 * Assertions shared by the tests of the registry-backed functions (lib/constructs/onramp-function.ts)
 * and the topic-rule functions built on them (lib/constructs/topic-rule-function.ts): each test
 * file calls them with its construct's logical-id prefix (`FleetCommit`, `CertificateRotation`).
 */
import assert from "node:assert/strict";
import type { Duration } from "aws-cdk-lib";
import type { Template } from "aws-cdk-lib/assertions";
import { LAMBDA_NODE_OPTIONS } from "#lib/bundling.ts";
import type { TopicRuleDefinition } from "#templates/catalog.ts";
import { cfnText, defaultApp, logicalIdAt, resourceAt, type SynthesizedApp } from "./app-fixture.ts";

/** `arn:…:iot:{region}:{account}` as {@link cfnText} renders it. */
export const IOT = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}";
/** The registry table's ARN as the provisioning stack imports it. */
export const TABLE_ARN = "${import:IotOnramp-Registry:ExportsOutputFnGetAttRegistryTableDB777839Arn16750D15}";

/**
 * A role policy's statements as { Sid: { actions, resources, condition } } (text, sorted); a
 * statement without a Sid is keyed by its actions. Every statement must be an Allow.
 */
export function statementsOf(prefix: string, app: SynthesizedApp = defaultApp()) {
  const policy = resourceAt(app.provisioningTemplate, "AWS::IAM::Policy", prefix).Properties;
  const bySid: Record<string, { actions: string[]; resources: string[]; condition?: unknown }> = {};
  for (const s of policy.PolicyDocument.Statement as Record<string, unknown>[]) {
    assert.equal(s.Effect, "Allow");
    const list = (v: unknown) => (Array.isArray(v) ? v : [v]).map(cfnText).sort();
    bySid[String(s.Sid ?? list(s.Action).join(","))] = {
      actions: list(s.Action),
      resources: list(s.Resource),
      ...(s.Condition ? { condition: s.Condition } : {}),
    };
  }
  return bySid;
}

/**
 * The function at `{prefix}Function` runs `serviceName` on Node.js 22, arm64, with the vend
 * function's memory, the shared NODE_OPTIONS, its own log group `{prefix}Logs` (explicit
 * retention) and no reserved concurrency.
 */
export function assertSharedFunctionSettings(template: Template, prefix: string, serviceName: string): void {
  const fn = resourceAt(template, "AWS::Lambda::Function", `${prefix}Function`).Properties;
  const vend = resourceAt(template, "AWS::Lambda::Function", "VendFunction").Properties;
  assert.equal(fn.Runtime, "nodejs22.x");
  assert.deepEqual(fn.Architectures, ["arm64"]);
  assert.equal(fn.Handler, "index.handler");
  assert.equal(fn.MemorySize, vend.MemorySize);
  assert.equal(fn.Environment.Variables.NODE_OPTIONS, LAMBDA_NODE_OPTIONS);
  assert.equal(fn.Environment.Variables.POWERTOOLS_SERVICE_NAME, serviceName);
  assert.match(cfnText(fn.LoggingConfig.LogGroup), new RegExp(`^\\$\\{${prefix}Logs[0-9A-F]+\\}$`));
  assert.equal(fn.ReservedConcurrentExecutions, undefined, "no reserved concurrency by default");
  const logs = resourceAt(template, "AWS::Logs::LogGroup", `${prefix}Logs`).Properties;
  assert.equal(typeof logs.RetentionInDays, "number", "explicit retention");
}

/** The function at `{prefix}Function` has the three settings the shared wiring reads. */
export function assertRegistryEnvironment(template: Template, prefix: string): void {
  const env = resourceAt(template, "AWS::Lambda::Function", `${prefix}Function`).Properties.Environment
    .Variables;
  assert.match(
    cfnText(env.REGISTRY_TABLE_NAME),
    /^\$\{import:IotOnramp-Registry:ExportsOutputRefRegistryTable/,
  );
  assert.equal(env.PRODUCT_SECRET_PREFIX, "onramp/products/");
  assert.equal(env.REGISTRY_KEY_SECRET_NAME, "onramp/registry-key");
}

/** The rule at `{prefix}Rule` is `definition`, enabled, with one action: the Lambda at `{prefix}Function`. */
export function assertTopicRule(template: Template, prefix: string, definition: TopicRuleDefinition): void {
  const fnId = logicalIdAt(template, "AWS::Lambda::Function", `${prefix}Function`);
  const rule = resourceAt(template, "AWS::IoT::TopicRule", `${prefix}Rule`).Properties;
  assert.equal(rule.RuleName, definition.ruleName);
  const payload = rule.TopicRulePayload;
  assert.equal(payload.Sql, definition.sql);
  assert.equal(payload.AwsIotSqlVersion, definition.awsIotSqlVersion);
  assert.equal(payload.Description, definition.description);
  assert.equal(payload.RuleDisabled, false);
  assert.equal(payload.Actions.length, 1);
  assert.equal(cfnText(payload.Actions[0].Lambda.FunctionArn), `\${${fnId}.Arn}`);
}

/**
 * The rule at `{prefix}Rule` sends its errors to its own queue `{prefix}DeadLetters` (not one of
 * `otherQueues`), SSE, TLS only, kept `retention`, through `{prefix}RuleErrorRole`, which AWS IoT
 * may assume for this rule (`ruleName`) of this account only and which may only send to that queue.
 */
export function assertRuleErrorsToDeadLetters(
  template: Template,
  prefix: string,
  { ruleName, retention, otherQueues }: { ruleName: string; retention: Duration; otherQueues: string[] },
): void {
  const queueId = logicalIdAt(template, "AWS::SQS::Queue", `${prefix}DeadLetters`);
  const rule = resourceAt(template, "AWS::IoT::TopicRule", `${prefix}Rule`).Properties;
  const { Sqs } = rule.TopicRulePayload.ErrorAction;
  assert.equal(cfnText(Sqs.QueueUrl), `\${${queueId}}`);
  assert.equal(Sqs.UseBase64, false);
  const roleId = logicalIdAt(template, "AWS::IAM::Role", `${prefix}RuleErrorRole`);
  assert.equal(cfnText(Sqs.RoleArn), `\${${roleId}.Arn}`);
  for (const other of otherQueues) {
    assert.notEqual(queueId, logicalIdAt(template, "AWS::SQS::Queue", other));
  }

  const role = resourceAt(template, "AWS::IAM::Role", `${prefix}RuleErrorRole`).Properties;
  const trust = role.AssumeRolePolicyDocument.Statement[0];
  assert.deepEqual(trust.Principal, { Service: "iot.amazonaws.com" });
  assert.equal(cfnText(trust.Condition.StringEquals["aws:SourceAccount"]), "${AWS::AccountId}");
  assert.equal(cfnText(trust.Condition.ArnLike["aws:SourceArn"]), `${IOT}:rule/${ruleName}`);
  const errorStatements = Object.values(statementsOf(`${prefix}RuleErrorRoleDefaultPolicy`));
  assert.equal(errorStatements.length, 1);
  assert.deepEqual(errorStatements[0]!.resources, [`\${${queueId}.Arn}`]);
  assert.ok(errorStatements[0]!.actions.includes("sqs:SendMessage"));
  assert.ok(errorStatements[0]!.actions.every((a) => a.startsWith("sqs:")));

  const queue = resourceAt(template, "AWS::SQS::Queue", `${prefix}DeadLetters`).Properties;
  assert.equal(queue.SqsManagedSseEnabled, true);
  assert.equal(queue.MessageRetentionPeriod, retention.toSeconds());
  const queuePolicy = resourceAt(template, "AWS::SQS::QueuePolicy", `${prefix}DeadLettersPolicy`).Properties;
  const denyInsecure = queuePolicy.PolicyDocument.Statement.find(
    (s: { Effect: string }) => s.Effect === "Deny",
  );
  assert.deepEqual(denyInsecure.Condition, { Bool: { "aws:SecureTransport": "false" } });
}

/** `{prefix}Function` retries `retryAttempts` times, keeps events `maxEventAge`, then sends to `{prefix}DeadLetters`. */
export function assertEventInvokeConfig(
  template: Template,
  prefix: string,
  { retryAttempts, maxEventAge }: { retryAttempts: number; maxEventAge: Duration },
): void {
  const config = resourceAt(
    template,
    "AWS::Lambda::EventInvokeConfig",
    `${prefix}FunctionEventInvokeConfig`,
  ).Properties;
  assert.equal(config.MaximumRetryAttempts, retryAttempts);
  assert.equal(config.MaximumEventAgeInSeconds, maxEventAge.toSeconds());
  const queueId = logicalIdAt(template, "AWS::SQS::Queue", `${prefix}DeadLetters`);
  assert.equal(cfnText(config.DestinationConfig.OnFailure.Destination), `\${${queueId}.Arn}`);
}

/** Only AWS IoT may invoke `{prefix}Function`, from `{prefix}Rule` of this account. */
export function assertRuleInvokePermission(template: Template, prefix: string): void {
  const permission = resourceAt(
    template,
    "AWS::Lambda::Permission",
    `${prefix}FunctionIotRuleInvoke`,
  ).Properties;
  assert.equal(permission.Action, "lambda:InvokeFunction");
  assert.equal(permission.Principal, "iot.amazonaws.com");
  const fnId = logicalIdAt(template, "AWS::Lambda::Function", `${prefix}Function`);
  assert.equal(cfnText(permission.FunctionName), `\${${fnId}.Arn}`);
  const ruleId = logicalIdAt(template, "AWS::IoT::TopicRule", `${prefix}Rule`);
  assert.equal(cfnText(permission.SourceArn), `\${${ruleId}.Arn}`);
  assert.equal(cfnText(permission.SourceAccount), "${AWS::AccountId}");
}
