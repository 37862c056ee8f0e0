/**
 * JITR's share of AWS IoT's control-plane quotas: how many registrations per second the account
 * allows, and how many consumers of the JITR queue that takes. The CDK stack sizes the queue's
 * `maximumConcurrency` and the function's reserved concurrency from it (lib/lambda-settings.ts);
 * the local stack sizes its in-process queue the same way.
 *
 * Quotas: AWS IoT's per-operation TPS, the one table of lambdas/core/admission/quota-profile.ts
 * (DescribeCertificate, RegisterThing and UpdateCertificate 10 TPS by default, per account and
 * region, shared by every flow); local/iot/quotas.ts enforces the same figures with
 * `--aws-quotas default`.
 */
import { AWS_DEFAULT_IOT_TPS, FLOW_CALLS, flowCeiling, type IotQuotas } from "../admission/quota-profile.ts";

/**
 * Registrations per second the quotas allow: the tightest operation's TPS over JITR's calls per
 * registration (`FLOW_CALLS.jitr`, the admission module's one table; a repeated event for a
 * settled certificate costs none, the ledger answers first). 10 with AWS's defaults.
 */
export function jitrRegistrationsPerSecond(quotas: IotQuotas = { ...AWS_DEFAULT_IOT_TPS }): number {
  return flowCeiling(FLOW_CALLS.jitr, quotas);
}

/** What one registration takes on Lambda (seconds, ~5 AWS calls at 50–100 ms); sizes the consumers. */
export const JITR_SECONDS_PER_REGISTRATION = 0.5;

/** Lambda's bounds of an SQS event source's `maximumConcurrency` (ScalingConfig: 2 to 1,000). */
export const MIN_QUEUE_CONCURRENCY = 2;
export const MAX_QUEUE_CONCURRENCY = 1000;

/**
 * Consumers that keep the budget busy without exceeding it (Little's law: budget × seconds per
 * registration), within Lambda's bounds: 5 with AWS's defaults. Each consumer paces itself at
 * `budget / consumers` registrations per second ({@link makePacer}), so the sum never exceeds the
 * budget even when registrations are faster than estimated.
 */
export function jitrConsumers(
  registrationsPerSecond: number,
  secondsPerRegistration = JITR_SECONDS_PER_REGISTRATION,
): number {
  const wanted = Math.ceil(registrationsPerSecond * secondsPerRegistration);
  return Math.min(MAX_QUEUE_CONCURRENCY, Math.max(MIN_QUEUE_CONCURRENCY, wanted));
}

/** Spends one slot of a rate; resolves when the caller may go. */
export interface Pacer {
  take(): Promise<void>;
}

/** No pacing (tests, the local stack without quotas). */
export const unpaced: Pacer = { take: () => Promise.resolve() };

/**
 * Evenly spaced slots at `ratePerSecond` (burst 1): the n-th caller waits until its slot. The
 * clock and the sleep are injected so tests need no real time.
 */
export function makePacer(
  ratePerSecond: number,
  clock: () => number = Date.now,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Pacer {
  if (!(ratePerSecond > 0)) throw new RangeError("A pacer needs a rate above 0.");
  const interval = 1000 / ratePerSecond;
  let next = Number.NEGATIVE_INFINITY;
  return {
    take() {
      const now = clock();
      const slot = Math.max(now, next);
      next = slot + interval;
      return slot > now ? sleep(slot - now) : Promise.resolve();
    },
  };
}

/**
 * The JITR queue's settings, shared by the CDK stack (lib/constructs/jitr.ts) and the local stack's
 * in-process queue: Lambda's default SQS batch size; the function's timeout; a visibility timeout
 * of six times it (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-lambda-function-trigger.html);
 * the receives before the dead-letter queue (each failed receive backs off exponentially first, so
 * five receives span about two minutes on AWS with the consumer's 2 s base delay).
 */
export const JITR_QUEUE = {
  batchSize: 10,
  functionTimeoutSeconds: 60,
  visibilityTimeoutSeconds: 6 * 60,
  maxReceiveCount: 5,
} as const;
