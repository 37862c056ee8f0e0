import { Duration, Stack } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, Stats } from "aws-cdk-lib/aws-cloudwatch";
import { Effect, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { CfnTopicRule } from "aws-cdk-lib/aws-iot";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import {
  AWS_DEFAULT_IOT_TPS,
  budgetShards,
  type IotQuotas,
  provisioningRate,
} from "#core/admission/quota-profile.ts";
import { JITR_QUEUE } from "#core/jitr/budget.ts";
import { loadTopicRule, RULE_TARGETS, type TopicRuleDefinition } from "#templates/catalog.ts";
import {
  iotArn,
  iotProvisioningStatements,
  REGISTER_THING_ACTIONS,
  tableKeyStatements,
  UNDO_ACTIONS,
} from "../iam-grants.ts";
import { LAMBDA_SETTINGS } from "../lambda-settings.ts";
import { RegistryFunction } from "./onramp-function.ts";
import type { TopicRuleFunctionProps } from "./topic-rule-function.ts";

/** Settings of {@link JitrRegistration}: the registry resources it uses, by reference. */
export type JitrRegistrationProps = TopicRuleFunctionProps & {
  /** The device policies RegisterThing's templates attach (their ARNs scope AttachPolicy). */
  devicePolicyNames: readonly string[];
  /** The queue's consumers and their pace (lib/lambda-settings.ts readConcurrencySettings). */
  consumers: { maxConcurrency: number; perConsumerPerSecond: number };
  /**
   * The account's AWS IoT quotas (lib/config.ts `iotQuotas`): they size the provisioning budget JITR
   * shares with vending (PROVISIONING_RATE / PROVISIONING_SHARDS, as on the vend function). Default: AWS's.
   */
  iotQuotas?: IotQuotas;
};

/**
 * Below the JITR flow's two-minute provisioning claim (`defaultJitrConfig.claimTtlMs`), so a claim
 * can only expire after the function that took it has stopped. A batch of 10 registrations paced
 * at 2/s per consumer takes about 5 s.
 */
export const JITR_TIMEOUT = Duration.seconds(JITR_QUEUE.functionTimeoutSeconds);

/**
 * The work queue's visibility timeout: six times the function timeout, as AWS asks for an SQS
 * event source ("at least six times the function timeout ... if a function is throttled while
 * processing a previous batch", sqs-configure-lambda-function-trigger.html). A failed message
 * normally returns sooner: the consumer sets its own backoff with ChangeMessageVisibility.
 */
export const JITR_VISIBILITY_TIMEOUT = Duration.seconds(JITR_QUEUE.visibilityTimeoutSeconds);

/** Receives before the dead-letter queue (each failed one backs off exponentially first). */
export const JITR_MAX_RECEIVE_COUNT = JITR_QUEUE.maxReceiveCount;

/**
 * How long an event may wait in the work queue: a day. The device retries its connection anyway
 * and each retry publishes the event again; an older event is stale (and the consumer's ledger
 * remembers a settled certificate exactly this long, see process-registration-batch.ts).
 */
export const JITR_QUEUE_RETENTION = Duration.days(1);

/**
 * Retention of the dead-letter queue: 14 days, the SQS maximum, so failures survive a long weekend
 * and a holiday before someone looks at them. A message is a record of a failed registration, not
 * device state (the device's next connection publishes the event again), so losing one after two
 * weeks loses no data.
 */
export const JITR_DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * The backlog alarm: the work queue's oldest message older than 15 minutes in 3 consecutive
 * 5-minute periods. A roll-out larger than the budget (10 registrations/s with AWS's defaults:
 * 9,000 devices in 15 minutes) raises it by design: raise the quotas and `jitrRegistrationsPerSecond`,
 * or spread the roll-out.
 */
export const JITR_BACKLOG_ALARM_AGE = Duration.minutes(15);

/**
 * Just-in-time registration on AWS: topic rule → SQS → Lambda.
 * - The rule from `templates/rules/jitr-registration.json` (the file the local rule engine runs;
 *   the file names the target, the action is this construct's choice) with one `sqs` action into
 *   the encrypted, TLS-only work queue (standard: the rule's SQS action does not support FIFO
 *   queues, https://docs.aws.amazon.com/iot/latest/developerguide/sqs-rule-action.html), through
 *   a role AWS IoT may assume for this rule only and that may only send there; `useBase64` false,
 *   so the message body is the event's JSON.
 * - The function consumes it through an event source mapping: batches of 10, partial batch
 *   responses (ReportBatchItemFailures), a maximum concurrency sized from the JITR budget. A burst
 *   of events waits in the queue instead of being retried by Lambda's asynchronous invocation
 *   (which retries throttled events for up to 6 hours and may drop events it cannot keep up with,
 *   https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
 * - One dead-letter queue (14 days): the work queue's redrive target after
 *   {@link JITR_MAX_RECEIVE_COUNT} receives, and the rule's error action (the rule could not send
 *   to the work queue) through its own role. The two message shapes differ: redriven messages are
 *   the event itself; the error action sends the rule's error payload (`ruleName`, `topic`,
 *   `failures[]`, `base64OriginalPayload`).
 *
 * Creates `Logs`, `Role`, `Function` (a {@link RegistryFunction}), `Queue`, `DeadLetters`,
 * `RuleRole`, `RuleErrorRole` and `Rule`.
 */
export class JitrRegistration extends RegistryFunction {
  readonly rule: CfnTopicRule;
  readonly ruleDefinition: TopicRuleDefinition;
  /** The work queue the rule sends to and the function consumes. */
  readonly queue: Queue;
  /** Redriven messages and the rule's errors. */
  readonly deadLetterQueue: Queue;
  /** The role AWS IoT assumes for the rule's sqs action (send to the work queue only). */
  readonly ruleRole: Role;
  /** The role AWS IoT assumes for the rule's error action (send to the dead-letter queue only). */
  readonly ruleErrorRole: Role;
  /** The event source's maximum concurrency. */
  readonly maxConcurrency: number;
  /** The work queue's oldest message is older than {@link JITR_BACKLOG_ALARM_AGE} (JITR falls behind). */
  readonly backlogAlarm: Alarm;

  constructor(scope: Construct, id: string, props: JitrRegistrationProps) {
    const ruleDefinition = loadTopicRule(RULE_TARGETS.jitrRegistration);
    if (ruleDefinition.target !== RULE_TARGETS.jitrRegistration) {
      throw new Error(`templates/rules/jitr-registration.json targets "${ruleDefinition.target}".`);
    }
    super(scope, id, props, {
      entry: "jitr-registration.ts",
      serviceName: "jitr-registration",
      description:
        "iot-onramp: just-in-time registration (consumer of the queue the rule on $aws/events/certificates/registered/+ fills)",
      roleDescription: "iot-onramp jitr-registration function",
      timeout: JITR_TIMEOUT,
      statements: (self) => jitrStatements(self, props),
    });
    this.ruleDefinition = ruleDefinition;
    this.maxConcurrency = props.consumers.maxConcurrency;
    const stack = Stack.of(this);
    // Built, not read from the rule, so the roles' trust policies and the rule do not refer to each other.
    const ruleArn = iotArn(this, "rule", ruleDefinition.ruleName);

    this.deadLetterQueue = new Queue(this, "DeadLetters", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: JITR_DEAD_LETTER_RETENTION,
    });
    this.queue = new Queue(this, "Queue", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: JITR_VISIBILITY_TIMEOUT,
      retentionPeriod: JITR_QUEUE_RETENTION,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: JITR_MAX_RECEIVE_COUNT },
    });
    this.function.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: JITR_QUEUE.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: props.consumers.maxConcurrency,
      }),
    );
    this.function.addEnvironment(LAMBDA_SETTINGS.jitrQueueUrl, this.queue.queueUrl);
    // The account's budget, shared with vending (one take per registration).
    const rate = provisioningRate(props.iotQuotas ?? { ...AWS_DEFAULT_IOT_TPS });
    this.function.addEnvironment(LAMBDA_SETTINGS.provisioningRate, String(rate));
    this.function.addEnvironment(LAMBDA_SETTINGS.provisioningShards, String(budgetShards(rate)));
    this.function.addEnvironment(
      LAMBDA_SETTINGS.jitrRegistrationsPerSecond,
      String(Math.round(props.consumers.perConsumerPerSecond * 1000) / 1000),
    );

    const assumedByThisRule = () =>
      new ServicePrincipal("iot.amazonaws.com", {
        conditions: {
          StringEquals: { "aws:SourceAccount": stack.account },
          ArnLike: { "aws:SourceArn": ruleArn },
        },
      });
    this.ruleRole = new Role(this, "RuleRole", {
      assumedBy: assumedByThisRule(),
      description: "iot-onramp: the JITR topic rule's sqs action (send to the JITR work queue)",
    });
    this.queue.grantSendMessages(this.ruleRole);
    this.ruleErrorRole = new Role(this, "RuleErrorRole", {
      assumedBy: assumedByThisRule(),
      description: "iot-onramp: the JITR topic rule's error action (send to the dead-letter queue)",
    });
    this.deadLetterQueue.grantSendMessages(this.ruleErrorRole);

    this.rule = new CfnTopicRule(this, "Rule", {
      ruleName: ruleDefinition.ruleName,
      topicRulePayload: {
        sql: ruleDefinition.sql,
        awsIotSqlVersion: ruleDefinition.awsIotSqlVersion,
        description: ruleDefinition.description,
        ruleDisabled: false,
        actions: [
          { sqs: { queueUrl: this.queue.queueUrl, roleArn: this.ruleRole.roleArn, useBase64: false } },
        ],
        errorAction: {
          sqs: {
            queueUrl: this.deadLetterQueue.queueUrl,
            roleArn: this.ruleErrorRole.roleArn,
            useBase64: false,
          },
        },
      },
    });
    // The roles' policies must exist before the rule uses them.
    this.rule.node.addDependency(this.ruleRole, this.ruleErrorRole);

    this.backlogAlarm = new Alarm(this, "BacklogAlarm", {
      metric: this.queue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(5),
        statistic: Stats.MAXIMUM,
      }),
      threshold: JITR_BACKLOG_ALARM_AGE.toSeconds(),
      evaluationPeriods: 3,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription:
        "JITR: the work queue's oldest event has waited over 15 minutes in 3 periods in a row (registrations arrive faster than the budget). Devices keep retrying; raise the AWS IoT quotas and jitrRegistrationsPerSecond, or spread the roll-out.",
    });
  }
}

/**
 * Least privilege for the JITR path, derived from what it calls:
 * - register-device-certificate.ts through dynamodb-registry.ts: getDevice/getProduct (GetItem),
 *   claimDevice/completeClaim/releaseClaim (UpdateItem); the ledger (dynamodb-jitr-ledger.ts):
 *   UpdateItem only. No PutItem, DeleteItem (no nonces), no Query.
 * - through iot-provisioning.ts: DescribeCertificate, UpdateCertificate (activate or revoke),
 *   RegisterThing and what it does for the product's template, the undo (ListAttachedPolicies,
 *   DetachPolicy, ListPrincipalThings, DetachThingPrincipal, ListThingPrincipals, DeleteThing) and
 *   destroyCertificate of a crashed vend's leftover (DeleteCertificate).
 * - the work queue: what the event source mapping needs (added by it: ReceiveMessage,
 *   DeleteMessage, ChangeMessageVisibility, GetQueueAttributes, GetQueueUrl on that queue only).
 * - no Secrets Manager: the JITR path never reads a product secret or the registry key; no
 *   CreateCertificate*, no DescribeEndpoint.
 */
export function jitrStatements(scope: Construct, props: JitrRegistrationProps): PolicyStatement[] {
  const statements = [
    new PolicyStatement({
      sid: "RegistryTableItems",
      effect: Effect.ALLOW,
      actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
      resources: [props.table.tableArn],
    }),
    ...iotProvisioningStatements(scope, {
      certificate: [...REGISTER_THING_ACTIONS.certificate, ...UNDO_ACTIONS.certificate],
      thing: [...REGISTER_THING_ACTIONS.thing, ...UNDO_ACTIONS.thing],
      devicePolicyNames: props.devicePolicyNames,
      ...(props.thingNamePrefix ? { thingNamePrefix: props.thingNamePrefix } : {}),
      withoutResourceType: ["iot:RegisterThing"],
    }),
  ];
  statements.push(...tableKeyStatements(props.tableEncryptionKey, "read-write"));
  return statements;
}
