import { type Duration, Stack } from "aws-cdk-lib";
import { type PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { CfnTopicRule } from "aws-cdk-lib/aws-iot";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { SqsDestination } from "aws-cdk-lib/aws-lambda-destinations";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import { loadTopicRule, type TopicRuleDefinition } from "#templates/catalog.ts";
import { iotArn } from "../iam-grants.ts";
import {
  RegistryFunction,
  type RegistryFunctionSettings,
  type RegistryFunctionSpec,
} from "./onramp-function.ts";

/** What differs between the rule-invoked Lambdas (JITR, fleet commit, rotation). */
/**
 * What a topic-rule function's construct is given: the registry settings, plus the table's
 * customer managed key (if any) and the thing-name prefix its grants are scoped to (lib/config.ts
 * `thingNamePrefix`).
 */
export type TopicRuleFunctionProps = RegistryFunctionSettings & {
  tableEncryptionKey?: IKey;
  thingNamePrefix?: string;
};

export type TopicRuleFunctionSpec = Omit<RegistryFunctionSpec, "statements"> & {
  /**
   * The rule file `templates/rules/{ruleTarget}.json`, whose `target` must be this same name (a
   * RULE_TARGETS value): the file the local rule engine runs too.
   */
  ruleTarget: string;
  /** What the function calls (added to its role before anything else is granted), given the construct. */
  statements: (self: Construct) => readonly PolicyStatement[];
  /** Retries of a failed asynchronous invocation before the on-failure destination. */
  retryAttempts: number;
  /** How long an event may wait for (re)delivery. */
  maxEventAge: Duration;
  /** Retention of the dead-letter queue. */
  deadLetterRetention: Duration;
  /** Description of the role AWS IoT assumes for the rule's error action. */
  ruleErrorRoleDescription: string;
};

/**
 * A Lambda invoked asynchronously by an AWS IoT topic rule built from a `templates/rules/*.json`
 * file, and one encrypted, TLS-only SQS dead-letter queue for everything that could not be
 * processed:
 * - the rule's error action (the rule could not invoke the Lambda: throttling, permissions), with
 *   its own role that may only send to that queue (assumable by AWS IoT for this rule of this
 *   account only);
 * - the function's on-failure destination (the event failed its retries or outlived its maximum
 *   age).
 * The two message shapes differ: the error action sends the rule's error payload (`ruleName`,
 * `topic`, `failures[]`, `base64OriginalPayload`), the destination an invocation record
 * (`requestContext`, `requestPayload` = the event, `responsePayload`).
 *
 * Creates `Logs`, `Role`, `Function` (a {@link RegistryFunction}), `DeadLetters`, `RuleErrorRole`
 * and `Rule`, and the permission `IotRuleInvoke` (AWS IoT may invoke the function from this rule
 * only).
 */
export class TopicRuleFunction extends RegistryFunction {
  /** The topic rule. */
  readonly rule: CfnTopicRule;
  /** The rule file the rule was built from. */
  readonly ruleDefinition: TopicRuleDefinition;
  /** Failed events (rule error action and Lambda on-failure destination). */
  readonly deadLetterQueue: Queue;
  /** The role AWS IoT assumes for the rule's error action (send to the dead-letter queue only). */
  readonly ruleErrorRole: Role;

  constructor(scope: Construct, id: string, settings: RegistryFunctionSettings, spec: TopicRuleFunctionSpec) {
    const ruleDefinition = loadTopicRule(spec.ruleTarget);
    if (ruleDefinition.target !== spec.ruleTarget) {
      throw new Error(
        `templates/rules/${spec.ruleTarget}.json targets "${ruleDefinition.target}", not "${spec.ruleTarget}".`,
      );
    }
    const {
      ruleTarget: _ruleTarget,
      retryAttempts,
      maxEventAge,
      deadLetterRetention,
      ruleErrorRoleDescription,
      ...functionSpec
    } = spec;
    super(scope, id, settings, functionSpec);
    this.ruleDefinition = ruleDefinition;
    const stack = Stack.of(this);
    // Built, not read from the rule, so the error role's trust policy and the rule do not refer to
    // each other (the rule needs the role's ARN).
    const ruleArn = iotArn(this, "rule", ruleDefinition.ruleName);

    this.deadLetterQueue = new Queue(this, "DeadLetters", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: deadLetterRetention,
    });
    this.function.configureAsyncInvoke({
      retryAttempts,
      maxEventAge,
      onFailure: new SqsDestination(this.deadLetterQueue),
    });

    this.ruleErrorRole = new Role(this, "RuleErrorRole", {
      assumedBy: new ServicePrincipal("iot.amazonaws.com", {
        conditions: {
          StringEquals: { "aws:SourceAccount": stack.account },
          ArnLike: { "aws:SourceArn": ruleArn },
        },
      }),
      description: ruleErrorRoleDescription,
    });
    this.deadLetterQueue.grantSendMessages(this.ruleErrorRole);

    this.rule = new CfnTopicRule(this, "Rule", {
      ruleName: ruleDefinition.ruleName,
      topicRulePayload: {
        sql: ruleDefinition.sql,
        awsIotSqlVersion: ruleDefinition.awsIotSqlVersion,
        description: ruleDefinition.description,
        ruleDisabled: false,
        actions: [{ lambda: { functionArn: this.function.functionArn } }],
        errorAction: {
          sqs: {
            queueUrl: this.deadLetterQueue.queueUrl,
            roleArn: this.ruleErrorRole.roleArn,
            useBase64: false,
          },
        },
      },
    });
    // The error role's policy must exist before the rule can use it.
    this.rule.node.addDependency(this.ruleErrorRole);
    this.function.addPermission("IotRuleInvoke", {
      principal: new ServicePrincipal("iot.amazonaws.com"),
      action: "lambda:InvokeFunction",
      sourceArn: this.rule.attrArn,
      sourceAccount: stack.account,
    });
  }
}
