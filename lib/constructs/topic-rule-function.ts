import { type Duration, Stack } from "aws-cdk-lib";
import { type PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { CfnTopicRule } from "aws-cdk-lib/aws-iot";
import { SqsDestination } from "aws-cdk-lib/aws-lambda-destinations";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import { loadTopicRule, type TopicRuleDefinition } from "#templates/catalog.ts";
import { iotArn } from "../iam-grants.ts";
import {
  createOnrampFunction,
  type OnrampFunctionParts,
  type OnrampFunctionProps,
} from "./onramp-function.ts";

/** What differs between the rule-invoked Lambdas (JITR, fleet commit). */
export type TopicRuleFunctionProps = OnrampFunctionProps & {
  /**
   * The rule file `templates/rules/{ruleTarget}.json`, whose `target` must be this same name (a
   * RULE_TARGETS value): the file the local rule engine runs too.
   */
  ruleTarget: string;
  /** What the function calls (added to its role before anything else is granted). */
  statements: readonly PolicyStatement[];
  /** Retries of a failed asynchronous invocation before the on-failure destination. */
  retryAttempts: number;
  /** How long an event may wait for (re)delivery. */
  maxEventAge: Duration;
  /** Retention of the dead-letter queue. */
  deadLetterRetention: Duration;
  /** Description of the role AWS IoT assumes for the rule's error action. */
  ruleErrorRoleDescription: string;
};

/** What {@link createTopicRuleFunction} creates. */
export type TopicRuleFunctionParts = OnrampFunctionParts & {
  rule: CfnTopicRule;
  ruleDefinition: TopicRuleDefinition;
  deadLetterQueue: Queue;
  ruleErrorRole: Role;
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
 * Creates `Logs`, `Role`, `Function`, `DeadLetters`, `RuleErrorRole` and `Rule` in `scope`, and
 * the permission `IotRuleInvoke` (AWS IoT may invoke the function from this rule only).
 */
export function createTopicRuleFunction(
  scope: Construct,
  props: TopicRuleFunctionProps,
): TopicRuleFunctionParts {
  const stack = Stack.of(scope);
  const ruleDefinition = loadTopicRule(props.ruleTarget);
  if (ruleDefinition.target !== props.ruleTarget) {
    throw new Error(
      `templates/rules/${props.ruleTarget}.json targets "${ruleDefinition.target}", not "${props.ruleTarget}".`,
    );
  }
  // Built, not read from the rule, so the error role's trust policy and the rule do not refer to
  // each other (the rule needs the role's ARN).
  const ruleArn = iotArn(scope, "rule", ruleDefinition.ruleName);

  const {
    ruleTarget: _ruleTarget,
    statements,
    retryAttempts,
    maxEventAge,
    deadLetterRetention,
    ruleErrorRoleDescription,
    ...functionProps
  } = props;
  const parts = createOnrampFunction(scope, functionProps);
  for (const statement of statements) parts.role.addToPrincipalPolicy(statement);

  const deadLetterQueue = new Queue(scope, "DeadLetters", {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: deadLetterRetention,
  });
  parts.function.configureAsyncInvoke({
    retryAttempts,
    maxEventAge,
    onFailure: new SqsDestination(deadLetterQueue),
  });

  const ruleErrorRole = new Role(scope, "RuleErrorRole", {
    assumedBy: new ServicePrincipal("iot.amazonaws.com", {
      conditions: {
        StringEquals: { "aws:SourceAccount": stack.account },
        ArnLike: { "aws:SourceArn": ruleArn },
      },
    }),
    description: ruleErrorRoleDescription,
  });
  deadLetterQueue.grantSendMessages(ruleErrorRole);

  const rule = new CfnTopicRule(scope, "Rule", {
    ruleName: ruleDefinition.ruleName,
    topicRulePayload: {
      sql: ruleDefinition.sql,
      awsIotSqlVersion: ruleDefinition.awsIotSqlVersion,
      description: ruleDefinition.description,
      ruleDisabled: false,
      actions: [{ lambda: { functionArn: parts.function.functionArn } }],
      errorAction: {
        sqs: {
          queueUrl: deadLetterQueue.queueUrl,
          roleArn: ruleErrorRole.roleArn,
          useBase64: false,
        },
      },
    },
  });
  // The error role's policy must exist before the rule can use it.
  rule.node.addDependency(ruleErrorRole);
  parts.function.addPermission("IotRuleInvoke", {
    principal: new ServicePrincipal("iot.amazonaws.com"),
    action: "lambda:InvokeFunction",
    sourceArn: rule.attrArn,
    sourceAccount: stack.account,
  });
  return { ...parts, rule, ruleDefinition, deadLetterQueue, ruleErrorRole };
}
