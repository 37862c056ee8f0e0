import { type Duration, Stack } from "aws-cdk-lib";
import { type PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { CfnTopicRule } from "aws-cdk-lib/aws-iot";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { SqsDestination } from "aws-cdk-lib/aws-lambda-destinations";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import { loadTopicRulesFor, type TopicRuleDefinition } from "#templates/catalog.ts";
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
   * A RULE_TARGETS value: every `templates/rules/*.json` whose `target` is this name becomes a rule
   * invoking this function (the files the local rule engine runs too; one per topic filter).
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
 * A Lambda invoked asynchronously by the AWS IoT topic rules built from the `templates/rules/*.json`
 * files that target it (usually one), and one encrypted, TLS-only SQS dead-letter queue for
 * everything that could not be processed:
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
 * and `Rule` with the permission `IotRuleInvoke` (AWS IoT may invoke the function from this rule
 * only); a second rule file adds `Rule2` and `IotRuleInvoke2`, and so on, sharing the queue and the
 * error role.
 */
export class TopicRuleFunction extends RegistryFunction {
  /** The first topic rule (the only one, except for a target listening on several topic filters). */
  readonly rule: CfnTopicRule;
  /** The rule file the first rule was built from. */
  readonly ruleDefinition: TopicRuleDefinition;
  /** Every topic rule, in the order of their files' names. */
  readonly rules: readonly CfnTopicRule[];
  /** The rule files, in the same order. */
  readonly ruleDefinitions: readonly TopicRuleDefinition[];
  /** Failed events (rule error action and Lambda on-failure destination). */
  readonly deadLetterQueue: Queue;
  /** The role AWS IoT assumes for the rule's error action (send to the dead-letter queue only). */
  readonly ruleErrorRole: Role;

  constructor(scope: Construct, id: string, settings: RegistryFunctionSettings, spec: TopicRuleFunctionSpec) {
    const ruleDefinitions = loadTopicRulesFor(spec.ruleTarget);
    const {
      ruleTarget: _ruleTarget,
      retryAttempts,
      maxEventAge,
      deadLetterRetention,
      ruleErrorRoleDescription,
      ...functionSpec
    } = spec;
    super(scope, id, settings, functionSpec);
    this.ruleDefinitions = ruleDefinitions;
    const stack = Stack.of(this);
    // Built, not read from the rules, so the error role's trust policy and the rules do not refer to
    // each other (a rule needs the role's ARN).
    const ruleArns = ruleDefinitions.map((definition) => iotArn(this, "rule", definition.ruleName));

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
          ArnLike: { "aws:SourceArn": ruleArns.length === 1 ? ruleArns[0] : ruleArns },
        },
      }),
      description: ruleErrorRoleDescription,
    });
    this.deadLetterQueue.grantSendMessages(this.ruleErrorRole);

    this.rules = ruleDefinitions.map((definition, index) => {
      const suffix = index === 0 ? "" : String(index + 1);
      const rule = new CfnTopicRule(this, `Rule${suffix}`, {
        ruleName: definition.ruleName,
        topicRulePayload: {
          sql: definition.sql,
          awsIotSqlVersion: definition.awsIotSqlVersion,
          description: definition.description,
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
      rule.node.addDependency(this.ruleErrorRole);
      this.function.addPermission(`IotRuleInvoke${suffix}`, {
        principal: new ServicePrincipal("iot.amazonaws.com"),
        action: "lambda:InvokeFunction",
        sourceArn: rule.attrArn,
        sourceAccount: stack.account,
      });
      return rule;
    });
    const [rule] = this.rules;
    const [ruleDefinition] = ruleDefinitions;
    if (!rule || !ruleDefinition) throw new Error(`No rule targets "${spec.ruleTarget}".`);
    this.rule = rule;
    this.ruleDefinition = ruleDefinition;
  }
}
