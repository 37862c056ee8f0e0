/**
 * JITR's share of AWS IoT's control-plane quotas: how many registrations per second the account
 * allows, and how many consumers of the JITR queue that takes. The CDK stack sizes the queue's
 * `maximumConcurrency` and the function's reserved concurrency from it (lib/lambda-settings.ts);
 * the local stack sizes its in-process queue the same way.
 *
 * Quotas: AWS IoT's per-operation TPS (https://docs.aws.amazon.com/general/latest/gr/iot-core.html,
 * "AWS IoT Core throttling limits"): DescribeCertificate, RegisterThing and UpdateCertificate 10 TPS
 * by default, per account and region, shared by every flow. local/iot/quotas.ts enforces the same
 * figures with `--aws-quotas default`.
 */

/** A TPS per AWS IoT operation (AWS's defaults, or an account's raised quotas). */
export type OperationTps = Readonly<Record<string, number>>;

/** AWS IoT's default TPS of the operations JITR calls (issue 14's figures from the page above). */
export const DEFAULT_JITR_OPERATION_TPS: OperationTps = {
  DescribeCertificate: 10,
  RegisterThing: 10,
  UpdateCertificate: 10,
};

/**
 * The AWS IoT calls of one first registration of a certificate
 * (register-device-certificate.ts): DescribeCertificate (status, CA, PEM), DescribeThing (is the
 * thing ours) and RegisterThing (registerDeviceThing), UpdateCertificate ACTIVE (activateCommitted).
 * A repeated event for a settled certificate costs none (the ledger answers first); a refusal costs
 * DescribeCertificate + UpdateCertificate REVOKED.
 */
export const JITR_CALLS_PER_REGISTRATION: Readonly<Record<string, number>> = {
  DescribeCertificate: 1,
  DescribeThing: 1,
  RegisterThing: 1,
  UpdateCertificate: 1,
};

/**
 * Registrations per second the quotas allow: the tightest operation's TPS over its calls per
 * registration (operations without a listed quota do not bind). 10 with AWS's defaults.
 */
export function jitrRegistrationsPerSecond(
  tps: OperationTps = DEFAULT_JITR_OPERATION_TPS,
  calls: Readonly<Record<string, number>> = JITR_CALLS_PER_REGISTRATION,
): number {
  let budget = Number.POSITIVE_INFINITY;
  for (const [operation, count] of Object.entries(calls)) {
    const limit = tps[operation];
    if (limit !== undefined && count > 0) budget = Math.min(budget, limit / count);
  }
  if (!Number.isFinite(budget) || budget <= 0) throw new RangeError("No quota binds the JITR calls.");
  return budget;
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
