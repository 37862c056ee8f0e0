import { Duration } from "aws-cdk-lib";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";
import { rotationTopics } from "#core/rotation/ports.ts";
import { RULE_TARGETS } from "#templates/catalog.ts";
import {
  CLAIM_SETTLEMENT_ACTIONS,
  iotArn,
  iotProvisioningStatements,
  REGISTER_THING_ACTIONS,
  tableKeyStatements,
} from "../iam-grants.ts";
import { TopicRuleFunction, type TopicRuleFunctionProps } from "./topic-rule-function.ts";

/** Settings of {@link CertificateRotation}: the registry resources it uses, by reference. */
export type CertificateRotationProps = TopicRuleFunctionProps & {
  /** The device policies RegisterThing's templates attach (their ARNs scope AttachPolicy). */
  devicePolicyNames: readonly string[];
};

/**
 * Below the rotation's claim (`defaultJitrConfig.claimTtlMs`, two minutes, what the entry passes),
 * so a claim can only expire after the function that took it has stopped. A rotation is at most a
 * few registry calls, a stale claim's settlement, CreateCertificateFromCsr, DescribeThing,
 * RegisterThing, UpdateCertificate and one publish (plus DescribeEndpoint on a cold start).
 */
export const ROTATION_TIMEOUT = Duration.seconds(60);

/**
 * Lambda retries a failed asynchronous invocation twice (with backoff) before the on-failure
 * destination. The use case never throws (every outcome is an answer), so what is retried is a
 * failed publish of the answer; a retry of the same CSR answers the same certificate.
 */
export const ROTATION_RETRY_ATTEMPTS = 2;

/**
 * How long a rotation request may wait for (re)delivery: 10 minutes. The device is waiting for the
 * answer and asks again (same CSR, same certificate) when none comes; a request older than that is
 * one the device has given up on, so it goes to the dead-letter queue instead of making a
 * certificate nobody waits for.
 */
export const ROTATION_MAX_EVENT_AGE = Duration.minutes(10);

/** Retention of the dead-letter queue: 14 days, the SQS maximum (as for JITR). */
export const ROTATION_DEAD_LETTER_RETENTION = Duration.days(14);

/** The rotation's IoT actions without a resource type (on `Resource: "*"`, from lib/iam-allow-list.ts). */
export const ROTATION_ACTIONS_WITHOUT_RESOURCE_TYPE = [
  "iot:CreateCertificateFromCsr",
  "iot:RegisterThing",
  "iot:DescribeEndpoint",
] as const;

/**
 * The topics the rotation Lambda answers on, as IAM resource names (`things/{prefix}*` for the
 * thing): `.../rotate/accepted` and `.../rotate/rejected`. Not `.../rotate/required`, which the
 * operator's CLI publishes.
 */
export function rotationAnswerTopics(thingNamePrefix = ""): string[] {
  const things = `${thingNamePrefix}*`;
  return [rotationTopics.accepted(things), rotationTopics.rejected(things)];
}

/**
 * Certificate rotation over MQTT on AWS (built by {@link TopicRuleFunction}, like JITR): the topic
 * rule built from `templates/rules/certificate-rotation.json` (`SELECT *, topic(2) AS thingName,
 * principal() AS principal FROM 'things/+/certificates/rotate'`, the file the local rule engine
 * runs) invoking the rotation Lambda (`lambdas/entrypoints/certificate-rotation.ts`)
 * asynchronously, and one encrypted SQS dead-letter queue for the rule's error action and the
 * function's on-failure destination. The Lambda answers the device through the AWS IoT data plane
 * on `things/{thingName}/certificates/rotate/accepted` or `/rejected`.
 *
 * The switch to the new certificate (the device's first connection with it) is done by the fleet
 * commit function (lib/constructs/fleet-commit.ts), whose grants already cover it.
 */
export class CertificateRotation extends TopicRuleFunction {
  constructor(scope: Construct, id: string, props: CertificateRotationProps) {
    super(scope, id, props, {
      ruleTarget: RULE_TARGETS.certificateRotation,
      entry: "certificate-rotation.ts",
      serviceName: "certificate-rotation",
      description: "iot-onramp: certificate rotation over MQTT (topic rule on things/+/certificates/rotate)",
      roleDescription: "iot-onramp certificate-rotation function",
      timeout: ROTATION_TIMEOUT,
      statements: (self) => certificateRotationStatements(self, props),
      retryAttempts: ROTATION_RETRY_ATTEMPTS,
      maxEventAge: ROTATION_MAX_EVENT_AGE,
      deadLetterRetention: ROTATION_DEAD_LETTER_RETENTION,
      ruleErrorRoleDescription:
        "iot-onramp: the certificate rotation topic rule's error action (send to the dead-letter queue)",
    });
  }
}

/**
 * Least privilege for the rotation, derived from lambdas/core/rotation/rotate-certificate.ts
 * (`RotationDeps`) and its entry:
 * - dynamodb-registry.ts: getDevice/getProduct (GetItem), claimDevice, recordClaimCertificate,
 *   commitRotation, releaseClaim, and a stale claim's completeClaim/markActivated (UpdateItem,
 *   conditional). No PutItem, no Query.
 * - iot-provisioning.ts: describeCertificate (a retry's certificate), createCertificateFromCsr,
 *   registerDeviceThing (DescribeThing, RegisterThing and what it does for the product's template:
 *   {@link REGISTER_THING_ACTIONS}), setCertificateStatus, and the claim's settlement and undo
 *   ({@link CLAIM_SETTLEMENT_ACTIONS}: inspect, destroy the new certificate). No DeleteThing: the
 *   device's thing exists before and after a rotation.
 * - getDataEndpoint (DescribeEndpoint) and the answer: `iot:Publish` on the two answer topics.
 * - no Secrets Manager: the rotation never reads a product secret or the registry key.
 */
export function certificateRotationStatements(
  scope: Construct,
  props: CertificateRotationProps,
): PolicyStatement[] {
  const certificate = [
    ...new Set<string>([...REGISTER_THING_ACTIONS.certificate, ...CLAIM_SETTLEMENT_ACTIONS.certificate]),
  ];
  const statements = [
    new PolicyStatement({
      sid: "RegistryTableItems",
      effect: Effect.ALLOW,
      actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
      resources: [props.table.tableArn],
    }),
    ...iotProvisioningStatements(scope, {
      certificate,
      thing: REGISTER_THING_ACTIONS.thing,
      devicePolicyNames: props.devicePolicyNames,
      ...(props.thingNamePrefix ? { thingNamePrefix: props.thingNamePrefix } : {}),
      withoutResourceType: ROTATION_ACTIONS_WITHOUT_RESOURCE_TYPE,
    }),
    // The data plane's Publish is authorized on the topic: only the two answer topics.
    new PolicyStatement({
      sid: "IotRotationAnswers",
      effect: Effect.ALLOW,
      actions: ["iot:Publish"],
      resources: rotationAnswerTopics(props.thingNamePrefix).map((topic) => iotArn(scope, "topic", topic)),
    }),
  ];
  statements.push(...tableKeyStatements(props.tableEncryptionKey, "read-write"));
  return statements;
}
