// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Match } from "aws-cdk-lib/assertions";
import { bindingTable } from "#adapters/binding-table.ts";
import { createTableInput } from "#adapters/table-design.ts";
import { OPERATOR_GROUP } from "#core/binding/model.ts";
import { BINDING_ROUTES } from "#handlers/binding-api.ts";
import {
  BINDING_REPORT_DEAD_LETTER_RETENTION,
  BINDING_REPORT_MAX_EVENT_AGE,
  BINDING_REPORT_RETRY_ATTEMPTS,
  bindingAnswerTopics,
} from "#lib/constructs/binding-report.ts";
import { PROVISIONING_OUTPUTS, REGISTRY_OUTPUTS } from "#lib/outputs.ts";
import { loadTopicRulesFor, RULE_TARGETS } from "#templates/catalog.ts";
import {
  appWithContext,
  cfnText,
  defaultApp,
  fullOptionsApp,
  logicalIdAt,
  onlyResource,
  resourceAt,
  resourcesOfType,
} from "./app-fixture.ts";
import {
  assertEventInvokeConfig,
  assertRegistryEnvironment,
  assertRuleInvokePermission,
  assertTopicRule,
  IOT,
  statementsOf,
  TABLE_ARN,
} from "./function-assertions.ts";

const sortByName = <T extends { AttributeName: string }>(items: T[]) =>
  [...items].sort((a, b) => a.AttributeName.localeCompare(b.AttributeName));

/**
 * The DynamoDB actions the binding adapter's commands need, read from its source: each
 * `new {Name}Command(`, and UpdateItem for its calls of `updateIf` (lambdas/adapters/dynamodb-items.ts).
 */
function bindingAdapterActions(): string[] {
  const source = readFileSync(
    new URL("../../lambdas/adapters/dynamodb-bindings.ts", import.meta.url),
    "utf8",
  );
  const byCommand: Record<string, string> = {
    Get: "dynamodb:GetItem",
    Put: "dynamodb:PutItem",
    Update: "dynamodb:UpdateItem",
    Delete: "dynamodb:DeleteItem",
    Query: "dynamodb:Query",
  };
  const actions = [...source.matchAll(/new (\w+)Command\(/g)].map((m) => {
    const action = byCommand[m[1]!];
    if (!action) throw new Error(`no DynamoDB action known for ${m[1]}Command`);
    return action;
  });
  if (/\bupdateIf\(/.test(source)) actions.push("dynamodb:UpdateItem");
  return [...new Set(actions)].sort();
}

const BINDING_TABLE_ARN =
  /^\$\{import:IotOnramp-Registry:ExportsOutputFnGetAttBindingsTable[0-9A-F]+Arn[0-9A-F]+\}$/;

describe("lib/constructs/binding-table", () => {
  it("is the local stack's table (createTableInput): keys, gsi1, TTL, on-demand, PITR, retained", () => {
    const { registryTemplate } = defaultApp();
    const table = resourceAt(registryTemplate, "AWS::DynamoDB::Table", "BindingsTable").Properties;
    const local = createTableInput(bindingTable, "bindings");
    assert.deepEqual(sortByName(table.AttributeDefinitions), sortByName(local.AttributeDefinitions));
    assert.deepEqual(table.KeySchema, local.KeySchema);
    assert.deepEqual(table.GlobalSecondaryIndexes, local.GlobalSecondaryIndexes);
    assert.equal(table.BillingMode, local.BillingMode);
    assert.deepEqual(table.TimeToLiveSpecification, {
      AttributeName: bindingTable.ttlAttribute,
      Enabled: true,
    });
    assert.deepEqual(table.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
    assert.equal(table.DeletionProtectionEnabled, true);
    registryTemplate.hasOutput(REGISTRY_OUTPUTS.bindingTableName, Match.anyValue());
  });

  it("uses the registry's customer managed key when the registry has one", () => {
    const { registryTemplate } = fullOptionsApp();
    const table = resourceAt(registryTemplate, "AWS::DynamoDB::Table", "BindingsTable").Properties;
    const keyId = logicalIdAt(registryTemplate, "AWS::KMS::Key", "RegistryKey");
    assert.equal(table.SSESpecification.SSEType, "KMS");
    assert.equal(cfnText(table.SSESpecification.KMSMasterKeyId), `\${${keyId}.Arn}`);
  });
});

describe("lib/constructs/binding-report", () => {
  const template = () => defaultApp().provisioningTemplate;
  const rules = loadTopicRulesFor(RULE_TARGETS.bindingReport);

  it("has one rule per binding rule file (match and reset, Alibaba and thing topics), each invoking the Lambda", () => {
    assert.equal(rules.length, 4);
    const froms = rules.map((r) => /FROM '([^']+)'/.exec(r.sql)?.[1]).sort();
    assert.deepEqual(froms, [
      "/sys/+/+/thing/awss/enrollee/match",
      "/sys/+/+/thing/reset",
      "things/+/sys/thing/awss/enrollee/match",
      "things/+/sys/thing/reset",
    ]);
    assertTopicRule(template(), "BindingReport", rules[0]!);
    rules.forEach((definition, index) => {
      const rule = resourceAt(
        template(),
        "AWS::IoT::TopicRule",
        `BindingReportRule${index ? index + 1 : ""}`,
      );
      assert.equal(rule.Properties.RuleName, definition.ruleName);
      assert.equal(rule.Properties.TopicRulePayload.Sql, definition.sql);
    });
  });

  it("sends rule errors and failed invocations to its own dead-letter queue; only AWS IoT may invoke it", () => {
    // The error role may be assumed for any of the four rules (ArnLike with a list).
    const role = resourceAt(template(), "AWS::IAM::Role", "BindingReportRuleErrorRole").Properties;
    const arns = role.AssumeRolePolicyDocument.Statement[0].Condition.ArnLike["aws:SourceArn"];
    assert.deepEqual(
      (arns as unknown[]).map(cfnText).sort(),
      rules.map((r) => `${IOT}:rule/${r.ruleName}`).sort(),
    );
    assertEventInvokeConfig(template(), "BindingReport", {
      retryAttempts: BINDING_REPORT_RETRY_ATTEMPTS,
      maxEventAge: BINDING_REPORT_MAX_EVENT_AGE,
    });
    assertRuleInvokePermission(template(), "BindingReport");
    const permissions = Object.keys(resourcesOfType(template(), "AWS::Lambda::Permission")).filter((id) =>
      id.startsWith("BindingReportFunctionIotRuleInvoke"),
    );
    assert.equal(permissions.length, rules.length);
    const queue = resourceAt(template(), "AWS::SQS::Queue", "BindingReportDeadLetters").Properties;
    assert.equal(queue.MessageRetentionPeriod, BINDING_REPORT_DEAD_LETTER_RETENTION.toSeconds());
  });

  it("grants exactly what the report calls: registry GetItem, the binding adapter's commands, Publish on the answer topics", () => {
    assertRegistryEnvironment(template(), "BindingReport");
    const env = resourceAt(template(), "AWS::Lambda::Function", "BindingReportFunction").Properties
      .Environment.Variables;
    assert.match(
      cfnText(env.BINDING_TABLE_NAME),
      /^\$\{import:IotOnramp-Registry:ExportsOutputRefBindingsTable/,
    );
    const statements = statementsOf("BindingReportRoleDefaultPolicy");
    assert.deepEqual(statements.RegistryTableRead, { actions: ["dynamodb:GetItem"], resources: [TABLE_ARN] });
    const bindings = statements.BindingTableItems!;
    assert.deepEqual(bindings.actions, bindingAdapterActions());
    assert.equal(bindings.resources.length, 2);
    assert.match(bindings.resources[0]!, BINDING_TABLE_ARN);
    assert.equal(bindings.resources[1], `${bindings.resources[0]}/index/${bindingTable.gsi1.name}`);
    assert.deepEqual(statements.IotDataEndpoint, { actions: ["iot:DescribeEndpoint"], resources: ["*"] });
    assert.deepEqual(statements.IotBindingAnswers, {
      actions: ["iot:Publish"],
      resources: bindingAnswerTopics()
        .map((t) => `${IOT}:topic/${t}`)
        .sort(),
    });
    for (const s of Object.values(statements)) {
      assert.ok(!s.actions.some((a) => a.startsWith("secretsmanager:") || a === "dynamodb:Scan"));
    }
  });

  it("answers only on match_reply / reset_reply, under the thing-name prefix when one is set", () => {
    assert.deepEqual(bindingAnswerTopics("ACME-").sort(), [
      "/sys/*/*/thing/awss/enrollee/match_reply",
      "/sys/*/*/thing/reset_reply",
      "things/ACME-*/sys/thing/awss/enrollee/match_reply",
      "things/ACME-*/sys/thing/reset_reply",
    ]);
  });
});

describe("lib/constructs/phone-api", () => {
  const template = () => defaultApp().provisioningTemplate;

  it("creates a user pool (email sign-in, strong passwords, optional TOTP), a public app client and the operators group", () => {
    const pool = onlyResource(template(), "AWS::Cognito::UserPool").Properties;
    assert.deepEqual(pool.UsernameAttributes, ["email"]);
    assert.equal(pool.MfaConfiguration, "OPTIONAL");
    assert.equal(pool.Policies.PasswordPolicy.MinimumLength, 12);
    const client = onlyResource(template(), "AWS::Cognito::UserPoolClient").Properties;
    assert.equal(client.GenerateSecret, false);
    assert.deepEqual(client.ExplicitAuthFlows.sort(), ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]);
    assert.equal(client.PreventUserExistenceErrors, "ENABLED");
    const group = onlyResource(template(), "AWS::Cognito::UserPoolGroup").Properties;
    assert.equal(group.GroupName, OPERATOR_GROUP);
  });

  it("puts every route behind the Cognito authorizer of that pool, and only those routes", () => {
    const t = template();
    const poolId = logicalIdAt(t, "AWS::Cognito::UserPool", "PhoneApiUsers");
    const authorizer = onlyResource(t, "AWS::ApiGateway::Authorizer").Properties;
    assert.equal(authorizer.Type, "COGNITO_USER_POOLS");
    assert.equal(authorizer.IdentitySource, "method.request.header.Authorization");
    assert.deepEqual(authorizer.ProviderARNs.map(cfnText), [`\${${poolId}.Arn}`]);
    const apiId = logicalIdAt(t, "AWS::ApiGateway::RestApi", "PhoneApi");
    const methods = Object.values(resourcesOfType(t, "AWS::ApiGateway::Method")).filter(
      (m) => cfnText(m.Properties.RestApiId) === `\${${apiId}}`,
    );
    const routes = Object.values(BINDING_ROUTES);
    assert.equal(methods.length, routes.length);
    for (const method of methods) {
      assert.equal(method.Properties.AuthorizationType, "COGNITO_USER_POOLS");
      assert.match(cfnText(method.Properties.AuthorizerId), /^\$\{PhoneApiAuthorizer[0-9A-F]+\}$/);
      assert.equal(method.Properties.Integration.Type, "AWS_PROXY");
    }
    assert.deepEqual(methods.map((m) => m.Properties.HttpMethod).sort(), routes.map((r) => r.method).sort());
    for (const route of routes) assert.doesNotMatch(route.path, /token\}/i, "no token in a path");
  });

  it("throttles the stage, logs access without bodies, shares the vending API's web ACL", () => {
    const t = template();
    const stage = resourceAt(t, "AWS::ApiGateway::Stage", "PhoneApiDeploymentStageprod").Properties;
    assert.equal(stage.MethodSettings[0].ThrottlingRateLimit, 20);
    assert.equal(stage.MethodSettings[0].ThrottlingBurstLimit, 40);
    assert.equal(stage.MethodSettings[0].DataTraceEnabled, false);
    assert.ok(stage.AccessLogSetting.Format.includes("requestId"));
    assert.ok(!stage.AccessLogSetting.Format.includes("requestBody"));
    const associations = Object.values(resourcesOfType(t, "AWS::WAFv2::WebACLAssociation"));
    const acls = new Set(associations.map((a) => cfnText(a.Properties.WebACLArn)));
    assert.equal(associations.length, 2, "vending and phone stages");
    assert.equal(acls.size, 1, "one web ACL");
  });

  it("grants the API Lambda the registry read and the binding table only (no IoT, no secrets)", () => {
    const statements = statementsOf("PhoneApiHandlerRoleDefaultPolicy");
    assert.deepEqual(statements.RegistryTableRead, { actions: ["dynamodb:GetItem"], resources: [TABLE_ARN] });
    assert.deepEqual(statements.BindingTableItems!.actions, bindingAdapterActions());
    for (const s of Object.values(statements)) {
      assert.ok(!s.actions.some((a) => a.startsWith("iot:") || a.startsWith("secretsmanager:")));
    }
  });

  it("exports the API URL, the pool and its client, and the report's dead-letter queue", () => {
    const outputs = template().findOutputs("*");
    for (const key of [
      PROVISIONING_OUTPUTS.phoneApiUrl,
      PROVISIONING_OUTPUTS.phoneUserPoolId,
      PROVISIONING_OUTPUTS.phoneUserPoolClientId,
      PROVISIONING_OUTPUTS.bindingReportDeadLetterQueueUrl,
    ]) {
      assert.ok(outputs[key], `${key} is exported`);
    }
  });

  it("with context phoneUserPoolId: uses that pool, creates none, exports no client", () => {
    const app = appWithContext("phone-pool", { phoneUserPoolId: "eu-west-1_AbC123xyz" });
    const t = app.provisioningTemplate;
    assert.equal(Object.keys(resourcesOfType(t, "AWS::Cognito::UserPool")).length, 0);
    const authorizer = onlyResource(t, "AWS::ApiGateway::Authorizer").Properties;
    assert.match(cfnText(authorizer.ProviderARNs[0]), /:userpool\/eu-west-1_AbC123xyz$/);
    assert.equal(
      t.findOutputs(PROVISIONING_OUTPUTS.phoneUserPoolClientId)[PROVISIONING_OUTPUTS.phoneUserPoolClientId],
      undefined,
    );
  });
});
