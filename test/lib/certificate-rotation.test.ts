// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import { rotationTopics } from "#core/rotation/ports.ts";
import {
  ROTATION_DEAD_LETTER_RETENTION,
  ROTATION_MAX_EVENT_AGE,
  ROTATION_RETRY_ATTEMPTS,
  ROTATION_TIMEOUT,
} from "#lib/constructs/certificate-rotation.ts";
import { WILDCARD_RESOURCE_ALLOW_LIST } from "#lib/iam-allow-list.ts";
import { REGISTER_THING_ACTIONS } from "#lib/iam-grants.ts";
import { loadTopicRule, RULE_TARGETS } from "#templates/catalog.ts";
import { iotAdapterActions, pickedIotMethods, ROTATION_IOT_METHODS } from "./adapter-calls.ts";
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

const POLICY = "CertificateRotationRoleDefaultPolicy";
const prefixApp = () => appWithContext("thing-prefix", { thingNamePrefix: "ACME-" });

describe("lib/constructs/certificate-rotation", () => {
  const template = () => defaultApp().provisioningTemplate;
  const fn = () => resourceAt(template(), "AWS::Lambda::Function", "CertificateRotationFunction").Properties;
  const fnId = () => logicalIdAt(template(), "AWS::Lambda::Function", "CertificateRotationFunction");
  const queueId = () => logicalIdAt(template(), "AWS::SQS::Queue", "CertificateRotationDeadLetters");

  it("runs certificate-rotation on Node.js 22, arm64, with the shared settings", () => {
    assertSharedFunctionSettings(template(), "CertificateRotation", "certificate-rotation");
  });

  it("stops before the rotation's claim expires (the entry uses the JITR claim time)", () => {
    const entry = readFileSync(
      new URL("../../lambdas/entrypoints/certificate-rotation.ts", import.meta.url),
      "utf8",
    );
    assert.match(entry, /claimTtlMs: defaultJitrConfig\.claimTtlMs/);
    assert.equal(fn().Timeout, ROTATION_TIMEOUT.toSeconds());
    assert.ok(fn().Timeout * 1000 < defaultJitrConfig.claimTtlMs);
  });

  it("sets every setting the shared wiring requires (lambdaServices reads all three)", () => {
    assertRegistryEnvironment(template(), "CertificateRotation");
  });

  it("builds the topic rule from templates/rules/certificate-rotation.json, with the Lambda action", () => {
    const definition = loadTopicRule("certificate-rotation");
    assert.equal(definition.target, RULE_TARGETS.certificateRotation);
    assert.equal(
      definition.sql,
      "SELECT *, topic(2) AS thingName, principal() AS principal FROM 'things/+/certificates/rotate'",
    );
    assert.equal(definition.sql.split("FROM ")[1], `'${rotationTopics.request("+")}'`);
    assertTopicRule(template(), "CertificateRotation", definition);
  });

  it("sends rule errors to its own encrypted, TLS-only dead-letter queue with a role that can only send there", () => {
    assertRuleErrorsToDeadLetters(template(), "CertificateRotation", {
      ruleName: loadTopicRule("certificate-rotation").ruleName,
      retention: ROTATION_DEAD_LETTER_RETENTION,
      otherQueues: ["JitrDeadLetters", "FleetCommitDeadLetters"],
    });
  });

  it("retries failed invocations and sends what still fails to the same queue", () => {
    assertEventInvokeConfig(template(), "CertificateRotation", {
      retryAttempts: ROTATION_RETRY_ATTEMPTS,
      maxEventAge: ROTATION_MAX_EVENT_AGE,
    });
  });

  it("lets only AWS IoT invoke the function, from this rule of this account", () => {
    assertRuleInvokePermission(template(), "CertificateRotation");
  });

  it("grants exactly the rotation's calls: no secrets, no DeleteThing, no PutItem, publish on the two answer topics", () => {
    const statements = statementsOf(POLICY);
    const logs = Object.entries(statements).find(([, s]) => s.actions.includes("logs:PutLogEvents"));
    assert.ok(logs);
    assert.match(logs[1].resources[0]!, /^\$\{CertificateRotationLogs[0-9A-F]+\.Arn\}$/);
    const sqs = Object.entries(statements).find(([, s]) => s.actions.includes("sqs:SendMessage"));
    assert.ok(sqs, "the on-failure destination may send to the queue");
    assert.deepEqual(sqs[1].resources, [`\${${queueId()}.Arn}`]);
    const { [logs[0]]: _logs, [sqs[0]]: _sqs, ...rest } = statements;
    assert.deepEqual(rest, {
      RegistryTableItems: { actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"], resources: [TABLE_ARN] },
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
        actions: ["iot:CreateThing", "iot:DescribeThing", "iot:UpdateThing"],
        resources: [`${IOT}:thing/*`],
      },
      IotDevicePolicy: { actions: ["iot:GetPolicy"], resources: [`${IOT}:policy/onramp-device-policy`] },
      IotActionsWithoutResourceType: {
        actions: ["iot:CreateCertificateFromCsr", "iot:DescribeEndpoint", "iot:RegisterThing"],
        resources: ["*"],
      },
      IotRotationAnswers: {
        actions: ["iot:Publish"],
        resources: [
          `${IOT}:topic/things/*/certificates/rotate/accepted`,
          `${IOT}:topic/things/*/certificates/rotate/rejected`,
        ],
      },
    });
    // The answer topics are the handler's; `.../rotate/required` is the operator CLI's, not granted.
    assert.deepEqual(rest.IotRotationAnswers?.resources, [
      `${IOT}:topic/${rotationTopics.accepted("*")}`,
      `${IOT}:topic/${rotationTopics.rejected("*")}`,
    ]);
    const text = JSON.stringify(Object.values(statements));
    assert.ok(!text.includes("rotate/required"));
    assert.ok(!text.includes("secretsmanager:"));
    const allowListed = WILDCARD_RESOURCE_ALLOW_LIST.map((g) => g.action);
    for (const action of rest.IotActionsWithoutResourceType!.actions) {
      assert.ok(allowListed.includes(action), action);
    }
  });

  it("covers every IoT call of the rotation (its port picks and the entry's getDataEndpoint), and only those", () => {
    const picked = [
      ...pickedIotMethods("lambdas/core/rotation/rotate-certificate.ts"),
      ...pickedIotMethods("lambdas/core/registry/claims.ts"),
      ...pickedIotMethods("lambdas/core/registry/register-device-thing.ts"),
    ];
    assert.ok(picked.length >= 7, picked.join(", "));
    for (const method of picked) {
      assert.ok((ROTATION_IOT_METHODS as readonly string[]).includes(method), method);
    }
    const entry = readFileSync(
      new URL("../../lambdas/entrypoints/certificate-rotation.ts", import.meta.url),
      "utf8",
    );
    assert.match(entry, /services\.iot\.getDataEndpoint\(\)/);

    const called = iotAdapterActions(ROTATION_IOT_METHODS);
    const granted = Object.values(statementsOf(POLICY)).flatMap((s) => s.actions);
    // RegisterThing performs the template's actions with the caller's permissions.
    const needed = new Set([
      ...called,
      ...REGISTER_THING_ACTIONS.certificate,
      ...REGISTER_THING_ACTIONS.thing,
      ...REGISTER_THING_ACTIONS.policy,
      "iot:Publish",
    ]);
    for (const action of needed) assert.ok(granted.includes(action), `${action} is not granted`);
    const iotGranted = granted.filter((a) => a.startsWith("iot:"));
    assert.deepEqual(
      [...new Set(iotGranted)].sort(),
      [...needed].sort(),
      "nothing the rotation does not call",
    );
    for (const notNeeded of ["iot:CreateKeysAndCertificate", "iot:DeleteThing", "iot:ListThingPrincipals"]) {
      assert.ok(!granted.includes(notNeeded), `${notNeeded} is not on the rotation path`);
    }
  });

  it("with a thing-name prefix: things, thing-principal actions and answer topics under it only", () => {
    const statements = statementsOf(POLICY, prefixApp());
    assert.deepEqual(statements.IotThings?.resources, [`${IOT}:thing/ACME-*`]);
    const bound = statements.IotCertificateToPrefixedThings;
    assert.deepEqual(bound?.actions, ["iot:AttachThingPrincipal", "iot:DetachThingPrincipal"]);
    assert.deepEqual(bound?.resources, [`${IOT}:cert/*`]);
    const condition = bound?.condition as { ArnLike: Record<string, unknown> };
    assert.equal(cfnText(condition.ArnLike["iot:thingArn"]), `${IOT}:thing/ACME-*`);
    assert.ok(!statements.IotCertificates?.actions.includes("iot:AttachThingPrincipal"));
    assert.ok(!statements.IotCertificates?.actions.includes("iot:DetachThingPrincipal"));
    assert.deepEqual(statements.IotRotationAnswers?.resources, [
      `${IOT}:topic/things/ACME-*/certificates/rotate/accepted`,
      `${IOT}:topic/things/ACME-*/certificates/rotate/rejected`,
    ]);
  });

  it("may use the table's customer managed key when there is one", () => {
    const statements = statementsOf(POLICY, fullOptionsApp());
    assert.ok(statements.RegistryTableKey?.actions.includes("kms:Decrypt"));
    assert.ok(statements.RegistryTableKey?.actions.includes("kms:GenerateDataKey"));
    assert.equal(statementsOf(POLICY).RegistryTableKey, undefined);
  });

  it("exports the function name, the dead-letter queue URL and the log group", () => {
    const outputs = template().toJSON().Outputs;
    assert.equal(cfnText(outputs.CertificateRotationFunctionName.Value), `\${${fnId()}}`);
    assert.deepEqual(outputs.CertificateRotationFunctionName.Export, {
      Name: "IotOnramp-CertificateRotationFunctionName",
    });
    assert.equal(cfnText(outputs.CertificateRotationDeadLetterQueueUrl.Value), `\${${queueId()}}`);
    assert.deepEqual(outputs.CertificateRotationDeadLetterQueueUrl.Export, {
      Name: "IotOnramp-CertificateRotationDeadLetterQueueUrl",
    });
    assert.match(
      cfnText(outputs.CertificateRotationLogGroupName.Value),
      /^\$\{CertificateRotationLogs[0-9A-F]+\}$/,
    );
  });
});
