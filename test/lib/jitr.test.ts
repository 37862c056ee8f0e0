// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import { LAMBDA_NODE_OPTIONS } from "#lib/bundling.ts";
import {
  JITR_DEAD_LETTER_RETENTION,
  JITR_MAX_RECEIVE_COUNT,
  JITR_QUEUE_RETENTION,
  JITR_TIMEOUT,
  JITR_VISIBILITY_TIMEOUT,
} from "#lib/constructs/jitr.ts";
import { loadTopicRule } from "#templates/catalog.ts";
import {
  appWithContext,
  cfnText,
  defaultApp,
  fullOptionsApp,
  logicalIdAt,
  resourceAt,
} from "./app-fixture.ts";

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

/** The JITR function's event source mapping (its logical id embeds the queue's path). */
function jitrMapping(template: ReturnType<typeof defaultApp>["provisioningTemplate"]) {
  const fnId = logicalIdAt(template, "AWS::Lambda::Function", "JitrFunction");
  const mappings = Object.values(template.findResources("AWS::Lambda::EventSourceMapping")).filter(
    (m) => cfnText(m.Properties.FunctionName) === `\${${fnId}}`,
  );
  assert.equal(mappings.length, 1);
  return mappings[0]!.Properties;
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
    assert.equal(fn().ReservedConcurrentExecutions, 5, "reserved: its queue's maximum concurrency");
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

  it("builds the topic rule from templates/rules/jitr-registration.json, with an sqs action into the work queue", () => {
    const definition = loadTopicRule("jitr-registration");
    const rule = resourceAt(template(), "AWS::IoT::TopicRule", "JitrRule").Properties;
    assert.equal(rule.RuleName, definition.ruleName);
    const payload = rule.TopicRulePayload;
    assert.equal(payload.Sql, definition.sql);
    assert.equal(payload.AwsIotSqlVersion, definition.awsIotSqlVersion);
    assert.equal(payload.Description, definition.description);
    assert.equal(payload.RuleDisabled, false);
    assert.equal(payload.Actions.length, 1);
    const { Sqs } = payload.Actions[0];
    assert.equal(cfnText(Sqs.QueueUrl), `\${${logicalIdAt(template(), "AWS::SQS::Queue", "JitrQueue")}}`);
    assert.equal(Sqs.UseBase64, false, "the body is the event's JSON");
    assert.equal(
      cfnText(Sqs.RoleArn),
      `\${${logicalIdAt(template(), "AWS::IAM::Role", "JitrRuleRole")}.Arn}`,
    );

    const role = resourceAt(template(), "AWS::IAM::Role", "JitrRuleRole").Properties;
    const trust = role.AssumeRolePolicyDocument.Statement[0];
    assert.deepEqual(trust.Principal, { Service: "iot.amazonaws.com" });
    assert.equal(cfnText(trust.Condition.ArnLike["aws:SourceArn"]), RULE_ARN);
    const statements = Object.values(statementsOf("JitrRuleRoleDefaultPolicy"));
    assert.equal(statements.length, 1);
    assert.deepEqual(statements[0]!.resources, [
      `\${${logicalIdAt(template(), "AWS::SQS::Queue", "JitrQueue")}.Arn}`,
    ]);
    assert.ok(statements[0]!.actions.includes("sqs:SendMessage"));
    assert.ok(statements[0]!.actions.every((a) => a.startsWith("sqs:")));
  });

  it("work queue: standard, encrypted, TLS only, visibility six times the timeout, redrive to the dead letters", () => {
    const queue = resourceAt(template(), "AWS::SQS::Queue", "JitrQueue").Properties;
    assert.equal(queue.FifoQueue, undefined, "the rule's sqs action does not support FIFO queues");
    assert.equal(queue.SqsManagedSseEnabled, true);
    assert.equal(queue.VisibilityTimeout, JITR_VISIBILITY_TIMEOUT.toSeconds());
    assert.ok(queue.VisibilityTimeout >= 6 * fn().Timeout);
    assert.equal(queue.MessageRetentionPeriod, JITR_QUEUE_RETENTION.toSeconds());
    const deadLetters = logicalIdAt(template(), "AWS::SQS::Queue", "JitrDeadLetters");
    assert.equal(cfnText(queue.RedrivePolicy.deadLetterTargetArn), `\${${deadLetters}.Arn}`);
    assert.equal(queue.RedrivePolicy.maxReceiveCount, JITR_MAX_RECEIVE_COUNT);
    const policy = resourceAt(template(), "AWS::SQS::QueuePolicy", "JitrQueuePolicy").Properties;
    const deny = policy.PolicyDocument.Statement.find((s: { Effect: string }) => s.Effect === "Deny");
    assert.deepEqual(deny.Condition, { Bool: { "aws:SecureTransport": "false" } });
  });

  it("consumes the queue in batches of 10 with partial batch responses and a maximum concurrency from the budget", () => {
    const mapping = jitrMapping(template());
    assert.equal(
      cfnText(mapping.EventSourceArn),
      `\${${logicalIdAt(template(), "AWS::SQS::Queue", "JitrQueue")}.Arn}`,
    );
    assert.equal(mapping.BatchSize, 10);
    assert.deepEqual(mapping.FunctionResponseTypes, ["ReportBatchItemFailures"]);
    // 10 registrations/s (AWS's default TPS over JITR's calls) × 0.5 s per registration.
    assert.deepEqual(mapping.ScalingConfig, { MaximumConcurrency: 5 });
    const env = fn().Environment.Variables;
    assert.equal(env.JITR_REGISTRATIONS_PER_SECOND, "2", "each consumer paces itself at 10 / 5");
    assert.equal(env.PROVISIONING_RATE, "10", "the account's budget, shared with vending");
    assert.equal(env.PROVISIONING_SHARDS, "1");
    assert.equal(
      cfnText(env.JITR_QUEUE_URL),
      `\${${logicalIdAt(template(), "AWS::SQS::Queue", "JitrQueue")}}`,
    );
    assert.throws(
      () => resourceAt(template(), "AWS::Lambda::EventInvokeConfig", "JitrFunctionEventInvokeConfig"),
      /found 0/,
      "no asynchronous invocation any more",
    );
  });

  it("sizes the consumers from context: a raised budget, or an explicit maximum; reservation at least that", () => {
    const quotas = appWithContext("jitr-quotas", {
      iotQuotas: JSON.stringify({ DescribeCertificate: 40, UpdateCertificate: 40, RegisterThing: 40 }),
    });
    assert.deepEqual(jitrMapping(quotas.provisioningTemplate).ScalingConfig, { MaximumConcurrency: 20 });
    const raised = appWithContext("jitr-raised", { jitrRegistrationsPerSecond: "100" });
    assert.deepEqual(jitrMapping(raised.provisioningTemplate).ScalingConfig, { MaximumConcurrency: 50 });
    const raisedFn = resourceAt(
      raised.provisioningTemplate,
      "AWS::Lambda::Function",
      "JitrFunction",
    ).Properties;
    assert.equal(raisedFn.ReservedConcurrentExecutions, 50);
    assert.equal(raisedFn.Environment.Variables.JITR_REGISTRATIONS_PER_SECOND, "2");
    assert.throws(
      () => appWithContext("jitr-too-few", { jitrMaxConcurrency: "8", jitrReservedConcurrency: "4" }),
      /jitrReservedConcurrency \(4\) must be at least jitrMaxConcurrency \(8\)/,
    );
    assert.throws(
      () => appWithContext("jitr-one", { jitrMaxConcurrency: "1" }),
      /jitrMaxConcurrency must be a whole number from 2 to 1000/,
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

  it("alarms when the work queue's oldest event waits over 15 minutes in 3 periods (JITR behind its budget)", () => {
    const alarm = resourceAt(template(), "AWS::CloudWatch::Alarm", "JitrBacklogAlarm").Properties;
    assert.equal(alarm.MetricName, "ApproximateAgeOfOldestMessage");
    assert.equal(alarm.Namespace, "AWS/SQS");
    assert.equal(alarm.Threshold, 900);
    assert.equal(alarm.EvaluationPeriods, 3);
    assert.equal(
      cfnText(alarm.Dimensions[0].Value),
      `\${${logicalIdAt(template(), "AWS::SQS::Queue", "JitrQueue")}.QueueName}`,
    );
    const withEmail = appWithContext("jitr-alarm-email", { alarmEmail: "ops@example.com" });
    const notified = resourceAt(withEmail.provisioningTemplate, "AWS::CloudWatch::Alarm", "JitrBacklogAlarm");
    assert.equal(notified.Properties.AlarmActions.length, 1);
  });

  it("lets nothing invoke the function directly: no rule permission (the event source mapping polls)", () => {
    assert.throws(
      () => resourceAt(template(), "AWS::Lambda::Permission", "JitrFunctionIotRuleInvoke"),
      /found 0/,
    );
  });

  it("grants exactly the JITR path's calls: no secrets, no certificate creation, no PutItem", () => {
    const statements = statementsOf("JitrRoleDefaultPolicy");
    const logs = Object.entries(statements).find(([, s]) => s.actions.includes("logs:PutLogEvents"));
    assert.ok(logs);
    assert.match(logs[1].resources[0]!, /^\$\{JitrLogs[0-9A-F]+\.Arn\}$/);
    const sqs = Object.entries(statements).find(([, s]) => s.actions.includes("sqs:ReceiveMessage"));
    assert.ok(sqs, "the event source mapping consumes the work queue");
    assert.deepEqual(sqs[1].resources, [
      `\${${logicalIdAt(template(), "AWS::SQS::Queue", "JitrQueue")}.Arn}`,
    ]);
    assert.ok(sqs[1].actions.includes("sqs:ChangeMessageVisibility"), "the consumer sets its retry delay");
    assert.ok(!sqs[1].actions.includes("sqs:SendMessage"));
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
