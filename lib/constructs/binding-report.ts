import { Duration } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";
import { bindingTable } from "#adapters/binding-table.ts";
import { RULE_TARGETS } from "#templates/catalog.ts";
import { iotArn, tableKeyStatements } from "../iam-grants.ts";
import { LAMBDA_SETTINGS } from "../lambda-settings.ts";
import { TopicRuleFunction, type TopicRuleFunctionProps } from "./topic-rule-function.ts";

/** Settings of {@link BindingReport}: the registry (read) and the binding table (read-write). */
export type BindingReportProps = TopicRuleFunctionProps & {
  bindingTable: ITable;
};

/** A report is a registry read, a few conditional writes and one publish. */
export const BINDING_REPORT_TIMEOUT = Duration.seconds(10);

/** Lambda retries a failed asynchronous invocation twice before the on-failure destination. */
export const BINDING_REPORT_RETRY_ATTEMPTS = 2;

/**
 * How long a token report may wait for (re)delivery: 5 minutes. The device retries after 30 s
 * (twice) and makes a new token after that (seeds 001/003), so an older report binds nobody.
 */
export const BINDING_REPORT_MAX_EVENT_AGE = Duration.minutes(5);

/** Retention of the dead-letter queue: 14 days, the SQS maximum (as for JITR). */
export const BINDING_REPORT_DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * The topics the report Lambda answers on, as IAM resource names: `match_reply` and `reset_reply`
 * in the Alibaba topic space of secret-born devices (`/sys/{pk}/{dn}/...`, a leading `/`, hence
 * `topic//sys/...` in the ARN) and in certificate devices' thing topic space (`things/{thing}/sys/...`).
 */
export function bindingAnswerTopics(thingNamePrefix = ""): string[] {
  const suffixes = ["thing/awss/enrollee/match_reply", "thing/reset_reply"];
  return suffixes.flatMap((suffix) => [`/sys/*/*/${suffix}`, `things/${thingNamePrefix}*/sys/${suffix}`]);
}

/**
 * Device–user binding, the device side (issue 11): the topic rules built from every
 * `templates/rules/*.json` whose target is `binding-report` (token reports on
 * `.../thing/awss/enrollee/match` and resets on `.../thing/reset`, for secret-born and certificate
 * devices; the files the local rule engine runs) invoking the report Lambda
 * (`lambdas/entrypoints/binding-report.ts`) asynchronously, one encrypted SQS dead-letter queue
 * for the rules' error actions and the function's on-failure destination. The Lambda stores the
 * hashed token in the binding table and answers the device through the AWS IoT data plane.
 */
export class BindingReport extends TopicRuleFunction {
  constructor(scope: Construct, id: string, props: BindingReportProps) {
    super(scope, id, props, {
      ruleTarget: RULE_TARGETS.bindingReport,
      entry: "binding-report.ts",
      serviceName: "binding-report",
      description: "iot-onramp: device-user binding token reports and device resets (topic rules)",
      roleDescription: "iot-onramp binding-report function",
      timeout: BINDING_REPORT_TIMEOUT,
      statements: (self) => bindingReportStatements(self, props),
      retryAttempts: BINDING_REPORT_RETRY_ATTEMPTS,
      maxEventAge: BINDING_REPORT_MAX_EVENT_AGE,
      deadLetterRetention: BINDING_REPORT_DEAD_LETTER_RETENTION,
      ruleErrorRoleDescription:
        "iot-onramp: the binding topic rules' error action (send to the dead-letter queue)",
    });
    this.function.addEnvironment(LAMBDA_SETTINGS.bindingTableName, props.bindingTable.tableName);
  }
}

/**
 * The binding table's items (conditional writes, the user index) for a binding function: what
 * lambdas/adapters/dynamodb-bindings.ts calls. No Scan, no batch writes.
 */
export function bindingTableStatement(table: ITable): PolicyStatement {
  // `bindingTable` (the adapter's constants) names the index; `table` is the construct's table.
  return new PolicyStatement({
    sid: "BindingTableItems",
    effect: Effect.ALLOW,
    actions: [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:Query",
    ],
    resources: [table.tableArn, `${table.tableArn}/index/${bindingTable.gsi1.name}`],
  });
}

/** Reading the registry: the device and its product (GetItem only). */
export function registryReadStatement(table: ITable): PolicyStatement {
  return new PolicyStatement({
    sid: "RegistryTableRead",
    effect: Effect.ALLOW,
    actions: ["dynamodb:GetItem"],
    resources: [table.tableArn],
  });
}

/**
 * Least privilege for the report Lambda: read the registry (is this a device of that product),
 * the binding table's items, the data endpoint (DescribeEndpoint, no resource type) and
 * `iot:Publish` on the two answer topics only.
 */
export function bindingReportStatements(scope: Construct, props: BindingReportProps): PolicyStatement[] {
  return [
    registryReadStatement(props.table),
    bindingTableStatement(props.bindingTable),
    new PolicyStatement({
      sid: "IotDataEndpoint",
      effect: Effect.ALLOW,
      actions: ["iot:DescribeEndpoint"],
      resources: ["*"],
    }),
    new PolicyStatement({
      sid: "IotBindingAnswers",
      effect: Effect.ALLOW,
      actions: ["iot:Publish"],
      resources: bindingAnswerTopics(props.thingNamePrefix).map((topic) => iotArn(scope, "topic", topic)),
    }),
    ...tableKeyStatements(props.tableEncryptionKey, "read-write"),
  ];
}
