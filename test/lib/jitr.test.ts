// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import { LAMBDA_NODE_OPTIONS } from "#lib/bundling.ts";
import {
  JITR_DEAD_LETTER_RETENTION,
  JITR_MAX_EVENT_AGE,
  JITR_RETRY_ATTEMPTS,
  JITR_TIMEOUT,
} from "#lib/constructs/jitr.ts";
import { loadTopicRule } from "#templates/catalog.ts";
import { cfnText, defaultApp, fullOptionsApp, logicalIdAt, resourceAt } from "./app-fixture.ts";

const IOT = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}";
const RULE_ARN = `${IOT}:rule/onramp_jitr_registration`;

/** A role policy's statements as { Sid: { actions, resources } } (text, sorted). */
function statementsOf(prefix: string, app = defaultApp()) {
  const policy = resourceAt(app.provisioningTemplate, "AWS::IAM::Policy", prefix).Properties;
  const bySid: Record<string, { actions: string[]; resources: string[] }> = {};
  for (const s of policy.PolicyDocument.Statement as Record<string, unknown>[]) {
    assert.equal(s.Effect, "Allow");
    const list = (v: unknown) => (Array.isArray(v) ? v : [v]).map(cfnText).sort();
    bySid[String(s.Sid ?? list(s.Action).join(","))] = {
      actions: list(s.Action),
      resources: list(s.Resource),
    };
  }
  return bySid;
}

describe("lib/constructs/jitr", () => {
  const template = () => defaultApp().provisioningTemplate;
  const fn = () => resourceAt(template(), "AWS::Lambda::Function", "JitrFunction").Properties;

  it("runs jitr-registration on Node.js 22, arm64, with the vend function's shared settings", () => {
    const vend = resourceAt(template(), "AWS::Lambda::Function", "VendFunction").Properties;
    assert.equal(fn().Runtime, "nodejs22.x");
    assert.deepEqual(fn().Architectures, ["arm64"]);
    assert.equal(fn().Handler, "index.handler");
    assert.equal(fn().MemorySize, vend.MemorySize);
    assert.equal(fn().Environment.Variables.NODE_OPTIONS, LAMBDA_NODE_OPTIONS);
    assert.equal(fn().Environment.Variables.POWERTOOLS_SERVICE_NAME, "jitr-registration");
    assert.match(cfnText(fn().LoggingConfig.LogGroup), /^\$\{JitrLogs[0-9A-F]+\}$/);
    assert.equal(fn().ReservedConcurrentExecutions, undefined, "no reserved concurrency by default");
  });

  it("stops before the JITR flow's provisioning claim expires", () => {
    assert.equal(fn().Timeout, JITR_TIMEOUT.toSeconds());
    assert.ok(fn().Timeout * 1000 < defaultJitrConfig.claimTtlMs);
    assert.ok(fn().Timeout < 120);
  });

  it("sets every setting the shared wiring requires (lambdaServices reads all three)", () => {
    const env = fn().Environment.Variables;
    assert.match(
      cfnText(env.REGISTRY_TABLE_NAME),
      /^\$\{import:IotOnramp-Registry:ExportsOutputRefRegistryTable/,
    );
    assert.equal(env.PRODUCT_SECRET_PREFIX, "onramp/products/");
    assert.equal(env.REGISTRY_KEY_SECRET_NAME, "onramp/registry-key");
  });

  it("builds the topic rule from templates/rules/jitr-registration.json, with the Lambda action", () => {
    const definition = loadTopicRule("jitr-registration");
    const rule = resourceAt(template(), "AWS::IoT::TopicRule", "JitrRule").Properties;
    assert.equal(rule.RuleName, definition.ruleName);
    const payload = rule.TopicRulePayload;
    assert.equal(payload.Sql, definition.sql);
    assert.equal(payload.AwsIotSqlVersion, definition.awsIotSqlVersion);
    assert.equal(payload.Description, definition.description);
    assert.equal(payload.RuleDisabled, false);
    assert.equal(payload.Actions.length, 1);
    assert.equal(
      cfnText(payload.Actions[0].Lambda.FunctionArn),
      `\${${logicalIdAt(template(), "AWS::Lambda::Function", "JitrFunction")}.Arn}`,
    );
  });

  it("sends rule errors to the encrypted, TLS-only dead-letter queue with a role that can only send there", () => {
    const rule = resourceAt(template(), "AWS::IoT::TopicRule", "JitrRule").Properties;
    const queueId = logicalIdAt(template(), "AWS::SQS::Queue", "JitrDeadLetters");
    const { Sqs } = rule.TopicRulePayload.ErrorAction;
    assert.equal(cfnText(Sqs.QueueUrl), `\${${queueId}}`);
    assert.equal(Sqs.UseBase64, false);
    const roleId = logicalIdAt(template(), "AWS::IAM::Role", "JitrRuleErrorRole");
    assert.equal(cfnText(Sqs.RoleArn), `\${${roleId}.Arn}`);

    const role = resourceAt(template(), "AWS::IAM::Role", "JitrRuleErrorRole").Properties;
    assert.deepEqual(role.AssumeRolePolicyDocument.Statement[0].Principal, { Service: "iot.amazonaws.com" });
    const condition = role.AssumeRolePolicyDocument.Statement[0].Condition;
    assert.equal(cfnText(condition.StringEquals["aws:SourceAccount"]), "${AWS::AccountId}");
    assert.equal(cfnText(condition.ArnLike["aws:SourceArn"]), RULE_ARN);
    const errorStatements = Object.values(statementsOf("JitrRuleErrorRoleDefaultPolicy"));
    assert.equal(errorStatements.length, 1);
    assert.deepEqual(errorStatements[0]!.resources, [`\${${queueId}.Arn}`]);
    assert.ok(errorStatements[0]!.actions.includes("sqs:SendMessage"));
    assert.ok(errorStatements[0]!.actions.every((a) => a.startsWith("sqs:")));

    const queue = resourceAt(template(), "AWS::SQS::Queue", "JitrDeadLetters").Properties;
    assert.equal(queue.SqsManagedSseEnabled, true);
    assert.equal(queue.MessageRetentionPeriod, JITR_DEAD_LETTER_RETENTION.toSeconds());
    assert.equal(queue.MessageRetentionPeriod, 14 * 24 * 3600);
    const queuePolicy = resourceAt(template(), "AWS::SQS::QueuePolicy", "JitrDeadLettersPolicy").Properties;
    const denyInsecure = queuePolicy.PolicyDocument.Statement.find(
      (s: { Effect: string }) => s.Effect === "Deny",
    );
    assert.deepEqual(denyInsecure.Condition, { Bool: { "aws:SecureTransport": "false" } });
  });

  it("retries failed invocations and sends what still fails to the same queue", () => {
    const config = resourceAt(
      template(),
      "AWS::Lambda::EventInvokeConfig",
      "JitrFunctionEventInvokeConfig",
    ).Properties;
    assert.equal(config.MaximumRetryAttempts, JITR_RETRY_ATTEMPTS);
    assert.equal(config.MaximumEventAgeInSeconds, JITR_MAX_EVENT_AGE.toSeconds());
    const queueId = logicalIdAt(template(), "AWS::SQS::Queue", "JitrDeadLetters");
    assert.equal(cfnText(config.DestinationConfig.OnFailure.Destination), `\${${queueId}.Arn}`);
  });

  it("lets only AWS IoT invoke the function, from this rule of this account", () => {
    const permission = resourceAt(
      template(),
      "AWS::Lambda::Permission",
      "JitrFunctionIotRuleInvoke",
    ).Properties;
    assert.equal(permission.Action, "lambda:InvokeFunction");
    assert.equal(permission.Principal, "iot.amazonaws.com");
    const ruleId = logicalIdAt(template(), "AWS::IoT::TopicRule", "JitrRule");
    assert.equal(cfnText(permission.SourceArn), `\${${ruleId}.Arn}`);
    assert.equal(cfnText(permission.SourceAccount), "${AWS::AccountId}");
  });

  it("grants exactly the JITR path's calls: no secrets, no certificate creation, no PutItem", () => {
    const statements = statementsOf("JitrRoleDefaultPolicy");
    const logs = Object.entries(statements).find(([, s]) => s.actions.includes("logs:PutLogEvents"));
    assert.ok(logs);
    assert.match(logs[1].resources[0]!, /^\$\{JitrLogs[0-9A-F]+\.Arn\}$/);
    const sqs = Object.entries(statements).find(([, s]) => s.actions.includes("sqs:SendMessage"));
    assert.ok(sqs, "the on-failure destination may send to the queue");
    const { [logs[0]]: _logs, [sqs[0]]: _sqs, ...rest } = statements;
    assert.deepEqual(rest, {
      RegistryTableItems: {
        actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        resources: ["${import:IotOnramp-Registry:ExportsOutputFnGetAttRegistryTableDB777839Arn16750D15}"],
      },
      IotCertificates: {
        actions: [
          "iot:AttachPolicy",
          "iot:AttachThingPrincipal",
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
      IotThings: {
        actions: [
          "iot:CreateThing",
          "iot:DeleteThing",
          "iot:DescribeThing",
          "iot:ListThingPrincipals",
          "iot:UpdateThing",
        ],
        resources: [`${IOT}:thing/*`],
      },
      IotDevicePolicy: { actions: ["iot:GetPolicy"], resources: [`${IOT}:policy/onramp-device-policy`] },
      IotActionsWithoutResourceType: { actions: ["iot:RegisterThing"], resources: ["*"] },
    });
  });

  it("covers every IoT call the JITR path makes through the adapter", () => {
    const adapter = readFileSync(
      new URL("../../lambdas/adapters/iot-provisioning.ts", import.meta.url),
      "utf8",
    );
    const granted = new Set(Object.values(statementsOf("JitrRoleDefaultPolicy")).flatMap((s) => s.actions));
    // The adapter methods of the JitrIot port, and the commands each one sends.
    const jitrMethods = [
      "registerThing",
      "describeCertificate",
      "setCertificateStatus",
      "destroyCertificate",
      "detachCertificate",
      "detachArn",
      "deleteThingIfUnused",
    ];
    const commands = new Set<string>();
    for (const method of jitrMethods) {
      const body = adapter.slice(adapter.search(new RegExp(`\\n  (private )?(async )?${method}\\(`)));
      const end = body.indexOf("\n  }\n");
      for (const m of body.slice(0, end).matchAll(/new (\w+)Command\(/g)) commands.add(`iot:${m[1]}`);
    }
    assert.equal(commands.size, 10, [...commands].join(", "));
    for (const action of commands) assert.ok(granted.has(action), `${action} is not granted`);
    for (const notNeeded of [
      "iot:CreateCertificateFromCsr",
      "iot:CreateKeysAndCertificate",
      "iot:DescribeEndpoint",
    ]) {
      assert.ok(!granted.has(notNeeded), `${notNeeded} is not on the JITR path`);
    }
  });

  it("may use the table's customer managed key when there is one", () => {
    const statements = statementsOf("JitrRoleDefaultPolicy", fullOptionsApp());
    assert.ok(statements.RegistryTableKey?.actions.includes("kms:Decrypt"));
    assert.ok(statements.RegistryTableKey?.actions.includes("kms:GenerateDataKey"));
    assert.equal(statementsOf("JitrRoleDefaultPolicy").RegistryTableKey, undefined);
  });

  it("exports the function name and the dead-letter queue URL", () => {
    const outputs = template().toJSON().Outputs;
    assert.equal(
      cfnText(outputs.JitrFunctionName.Value),
      `\${${logicalIdAt(template(), "AWS::Lambda::Function", "JitrFunction")}}`,
    );
    assert.deepEqual(outputs.JitrFunctionName.Export, { Name: "IotOnramp-JitrFunctionName" });
    assert.equal(
      cfnText(outputs.JitrDeadLetterQueueUrl.Value),
      `\${${logicalIdAt(template(), "AWS::SQS::Queue", "JitrDeadLetters")}}`,
    );
    assert.deepEqual(outputs.JitrDeadLetterQueueUrl.Export, { Name: "IotOnramp-JitrDeadLetterQueueUrl" });
    assert.match(cfnText(outputs.JitrLogGroupName.Value), /^\$\{JitrLogs[0-9A-F]+\}$/);
  });
});
