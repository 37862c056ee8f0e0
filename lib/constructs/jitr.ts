import { Duration } from "aws-cdk-lib";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";
import { RULE_TARGETS } from "#templates/catalog.ts";
import {
  iotProvisioningStatements,
  REGISTER_THING_ACTIONS,
  tableKeyStatements,
  UNDO_ACTIONS,
} from "../iam-grants.ts";
import { TopicRuleFunction, type TopicRuleFunctionProps } from "./topic-rule-function.ts";

/** Settings of {@link JitrRegistration}: the registry resources it uses, by reference. */
export type JitrRegistrationProps = TopicRuleFunctionProps & {
  /** The device policies RegisterThing's templates attach (their ARNs scope AttachPolicy). */
  devicePolicyNames: readonly string[];
};

/**
 * Below the JITR flow's two-minute provisioning claim (`defaultJitrConfig.claimTtlMs`), so a claim
 * can only expire after the function that took it has stopped.
 */
export const JITR_TIMEOUT = Duration.seconds(60);

/** Lambda retries a failed asynchronous invocation twice (with backoff) before the on-failure destination. */
export const JITR_RETRY_ATTEMPTS = 2;

/**
 * How long an event may wait for (re)delivery. A device retries its connection anyway and each
 * retry publishes the registration event again, so an hour of retries is plenty.
 */
export const JITR_MAX_EVENT_AGE = Duration.hours(1);

/**
 * Retention of the dead-letter queue: 14 days, the SQS maximum, so failures survive a long weekend
 * and a holiday before someone looks at them. A message is a record of a failed registration, not
 * device state (the device's next connection publishes the event again), so losing one after two
 * weeks loses no data.
 */
export const JITR_DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * Just-in-time registration on AWS (built by {@link TopicRuleFunction}): the topic rule built
 * from `templates/rules/jitr-registration.json` (the file the local rule engine runs) invoking the
 * JITR Lambda (`lambdas/entrypoints/jitr-registration.ts`) asynchronously, and one encrypted SQS
 * dead-letter queue for everything that could not be processed:
 * - the rule's error action (the rule could not invoke the Lambda: throttling, permissions), with
 *   its own role that may only send to that queue;
 * - the function's on-failure destination (the event failed {@link JITR_RETRY_ATTEMPTS} retries or
 *   outlived {@link JITR_MAX_EVENT_AGE}).
 * The two message shapes differ: the error action sends the rule's error payload
 * (`ruleName`, `topic`, `failures[]`, `base64OriginalPayload`), the destination an invocation record
 * (`requestContext`, `requestPayload` = the registration event, `responsePayload`).
 */
export class JitrRegistration extends TopicRuleFunction {
  constructor(scope: Construct, id: string, props: JitrRegistrationProps) {
    super(scope, id, props, {
      ruleTarget: RULE_TARGETS.jitrRegistration,
      entry: "jitr-registration.ts",
      serviceName: "jitr-registration",
      description:
        "iot-onramp: just-in-time registration (topic rule on $aws/events/certificates/registered/+)",
      roleDescription: "iot-onramp jitr-registration function",
      timeout: JITR_TIMEOUT,
      statements: (self) => jitrStatements(self, props),
      retryAttempts: JITR_RETRY_ATTEMPTS,
      maxEventAge: JITR_MAX_EVENT_AGE,
      deadLetterRetention: JITR_DEAD_LETTER_RETENTION,
      ruleErrorRoleDescription:
        "iot-onramp: the JITR topic rule's error action (send to the dead-letter queue)",
    });
  }
}

/**
 * Least privilege for the JITR path, derived from what it calls:
 * - register-device-certificate.ts through dynamodb-registry.ts: getDevice/getProduct (GetItem),
 *   claimDevice/completeClaim/releaseClaim (UpdateItem). No PutItem (no nonces), no Query.
 * - through iot-provisioning.ts: DescribeCertificate, UpdateCertificate (activate or revoke),
 *   RegisterThing and what it does for the product's template, the undo (ListAttachedPolicies,
 *   DetachPolicy, ListPrincipalThings, DetachThingPrincipal, ListThingPrincipals, DeleteThing) and
 *   destroyCertificate of a crashed vend's leftover (DeleteCertificate).
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
