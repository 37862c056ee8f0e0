import { Duration } from "aws-cdk-lib";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";
import { RULE_TARGETS } from "#templates/catalog.ts";
import { CLAIM_SETTLEMENT_ACTIONS, iotProvisioningStatements, tableKeyStatements } from "../iam-grants.ts";
import { TopicRuleFunction, type TopicRuleFunctionProps } from "./topic-rule-function.ts";

/** Settings of {@link FleetCommit}: the registry resources it uses, by reference. */
export type FleetCommitProps = TopicRuleFunctionProps;

/**
 * A commit is a few registry and AWS IoT calls (at most a GetItem, the certificate's description
 * and attachments, two UpdateItems, a re-read and, for a re-provisioning, destroying the replaced
 * certificate), each retried by the SDK: 30 s is ample, and far below the fleet claim's ten
 * minutes (`defaultFleetHookConfig.claimTtlMs`).
 */
export const FLEET_COMMIT_TIMEOUT = Duration.seconds(30);

/** Lambda retries a failed asynchronous invocation twice (with backoff) before the on-failure destination. */
export const FLEET_COMMIT_RETRY_ATTEMPTS = 2;

/**
 * How long a connection event may wait for (re)delivery. Past it nothing is lost: the device's next
 * connection publishes the event again, and the next flow on the serial commits a stale fleet claim
 * whose certificate is ACTIVE and attached.
 */
export const FLEET_COMMIT_MAX_EVENT_AGE = Duration.hours(1);

/** Retention of the dead-letter queue: 14 days, the SQS maximum (as for JITR). */
export const FLEET_COMMIT_DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * Fleet provisioning's phase two on AWS (built by {@link TopicRuleFunction}, like JITR): the topic
 * rule built from `templates/rules/fleet-commit.json` (`SELECT * FROM
 * '$aws/events/presence/connected/+'`, the file the local rule engine runs) invoking the commit
 * Lambda (`lambdas/entrypoints/fleet-commit.ts`) asynchronously, and one encrypted SQS dead-letter
 * queue for the rule's error action and the function's on-failure destination.
 *
 * AWS IoT publishes connect lifecycle events by default and they cannot be turned off
 * (https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html), so the rule
 * sees every client's connection in the account and region; the handler ignores those that are
 * not a registered serial with a fleet claim for that certificate.
 */
export class FleetCommit extends TopicRuleFunction {
  constructor(scope: Construct, id: string, props: FleetCommitProps) {
    super(scope, id, props, {
      ruleTarget: RULE_TARGETS.fleetCommit,
      entry: "fleet-commit.ts",
      serviceName: "fleet-commit",
      description: "iot-onramp: fleet provisioning commit (topic rule on $aws/events/presence/connected/+)",
      roleDescription: "iot-onramp fleet-commit function",
      timeout: FLEET_COMMIT_TIMEOUT,
      statements: (self) => fleetCommitStatements(self, props),
      retryAttempts: FLEET_COMMIT_RETRY_ATTEMPTS,
      maxEventAge: FLEET_COMMIT_MAX_EVENT_AGE,
      deadLetterRetention: FLEET_COMMIT_DEAD_LETTER_RETENTION,
      ruleErrorRoleDescription:
        "iot-onramp: the fleet commit topic rule's error action (send to the dead-letter queue)",
    });
  }
}

/**
 * Least privilege for the commit, derived from lambdas/core/fleet/commit-fleet-provisioning.ts:
 * - dynamodb-registry.ts: getDevice (GetItem), completeClaim and markActivated (UpdateItem,
 *   conditional). No PutItem, no Query.
 * - iot-provisioning.ts: {@link CLAIM_SETTLEMENT_ACTIONS} on `cert/*`: inspecting the new
 *   certificate, re-applying an operator's disable/revoke, destroying a re-provisioned device's
 *   replaced certificate. No thing action, no RegisterThing, no certificate creation.
 * - no Secrets Manager: the commit never reads a secret.
 */
export function fleetCommitStatements(scope: Construct, props: FleetCommitProps): PolicyStatement[] {
  const statements = [
    new PolicyStatement({
      sid: "RegistryTableItems",
      effect: Effect.ALLOW,
      actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
      resources: [props.table.tableArn],
    }),
    ...iotProvisioningStatements(scope, {
      certificate: CLAIM_SETTLEMENT_ACTIONS.certificate,
      thing: [],
      devicePolicyNames: [],
      ...(props.thingNamePrefix ? { thingNamePrefix: props.thingNamePrefix } : {}),
      withoutResourceType: [],
    }),
  ];
  statements.push(...tableKeyStatements(props.tableEncryptionKey, "read-write"));
  return statements;
}
