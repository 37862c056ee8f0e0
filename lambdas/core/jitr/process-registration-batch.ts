import { admitProvisioning } from "../admission/admit-provisioning.ts";
import type { ProvisioningBudget } from "../admission/ports.ts";
import { describeError } from "../describe-error.ts";
import { DomainError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { type Pacer, unpaced } from "./budget.ts";
import type { RegistrationLedger, RegistrationQueue } from "./ports.ts";
import type { JitrRejectionReason } from "./register-device-certificate.ts";
import { type RegistrationEvent, registrationEventSchema } from "./registration-event.ts";

/** One message of the JITR queue (an SQS record, or the local queue's), as the consumer sees it. */
export type QueuedRegistration = {
  messageId: string;
  receiptHandle: string;
  /** The rule's payload: the registration event as JSON (`useBase64` false). */
  body: string;
  /** How often the queue has handed this message out, this time included (from 1). */
  receiveCount: number;
};

/** What one registration decided (the per-event handler's answer). */
export type RegistrationResult = {
  outcome: "activated" | "already-active" | "ignored" | "in-progress" | "rejected";
  reason?: JitrRejectionReason;
};

/** What became of one message. */
export type MessageOutcome =
  | { status: "done"; result: RegistrationResult }
  /** Another message of the batch carries the same certificate, or it was settled after this event: dropped. */
  | { status: "duplicate"; certificateId: string }
  /** Returned to the queue after `retryAfterSeconds`. */
  | { status: "retry"; error: string; retryAfterSeconds: number; throttled: boolean };

/** The batch's answer: the partial batch response plus each message's outcome (logs, local stack). */
export type BatchReport = {
  batchItemFailures: { itemIdentifier: string }[];
  outcomes: Map<string, MessageOutcome>;
};

/** Settings of the consumer. */
export type BatchConfig = {
  /**
   * How long a lease keeps other messages of the certificate waiting (ms): just above the function
   * timeout, so a lease outlives no consumer that could still be working on it.
   */
  leaseMs: number;
  /** How long a settled certificate is remembered (ms): the queue's retention. */
  settledRetentionMs: number;
  /** First retry delay (s), doubled per receive up to {@link BatchConfig.maxRetryDelaySeconds}. */
  baseRetryDelaySeconds: number;
  maxRetryDelaySeconds: number;
};

export const defaultBatchConfig: BatchConfig = {
  // One invocation cannot hold a certificate longer than the function's timeout (JITR_QUEUE: 60 s).
  leaseMs: 65_000,
  settledRetentionMs: 24 * 3600_000,
  baseRetryDelaySeconds: 2,
  maxRetryDelaySeconds: 60,
};

export type BatchDeps = {
  ledger: RegistrationLedger;
  queue: RegistrationQueue;
  logger: Logger;
  /** Spaces this consumer's registrations (its share of the budget); none when absent. */
  pacer?: Pacer;
  /**
   * The account's provisioning budget shared with vending and the other flows
   * (lambdas/core/admission): one take per registration; a refusal returns the message to the
   * queue until its place in the backlog. None: not shared (the local stack without quotas, tests).
   */
  budget?: ProvisioningBudget;
  batchConfig?: BatchConfig;
  clock?: () => number;
  /** In [0, 1): the jitter of the retry delay; Math.random unless a test injects one. */
  random?: () => number;
};

/**
 * Whether the outcome settles the certificate: everything but "in-progress" (another flow holds the
 * device's claim and may still fail). Settling only drops events published before it: a disabled
 * device enabled later, or a certificate registered again, publishes a newer event, which is decided
 * again.
 */
function isFinal(result: RegistrationResult): boolean {
  return result.outcome !== "in-progress";
}

/**
 * Exponential backoff with jitter for a message that failed its `receiveCount`-th delivery:
 * base × 2^(receiveCount−1), capped, then a random point in its upper half (seconds, fractional;
 * SQS takes whole seconds, see sqs-registration-queue.ts).
 */
export function retryDelaySeconds(receiveCount: number, config: BatchConfig, random: () => number): number {
  const exponent = Math.min(Math.max(receiveCount, 1) - 1, 16);
  const ceiling = Math.min(config.maxRetryDelaySeconds, config.baseRetryDelaySeconds * 2 ** exponent);
  return ceiling / 2 + (ceiling / 2) * random();
}

/**
 * The JITR queue's consumer (rule → SQS → this, on Lambda and locally): one registration per
 * certificate, however often its event repeats.
 * - Within the batch, messages are grouped by certificate id: the first is registered, the others
 *   are dropped as duplicates (its outcome covers them).
 * - Across batches and consumers, {@link RegistrationLedger.begin} (one conditional write) drops
 *   an event whose certificate was settled after the event was published, before any AWS IoT
 *   call; one whose certificate another message is registering right now goes back to the queue
 *   until that one is likely done (then dropped as settled) or its lease ran out (then taken). The
 *   registry claim still guards the device.
 * - Each registration first takes its consumer's slot (`pacer`, the budget over the consumers) and
 *   a token of the account's budget shared with vending (`budget`); a refusal is a throttle whose
 *   Retry-After is the message's place in the backlog.
 * - A registration that throws returns its message to the queue after a backoff with jitter
 *   (ChangeMessageVisibility, reported in `batchItemFailures`); never dropped (the queue's redrive
 *   policy moves it to the dead-letter queue after its maximum receives). A throttled call also
 *   stops the batch: the rest of it goes back too, so a throttled consumer does not press on.
 * - A malformed body goes to `register` as it is (which refuses it) and is deleted: retrying
 *   cannot help.
 */
export async function processRegistrationBatch(
  deps: BatchDeps,
  messages: readonly QueuedRegistration[],
  /** The per-event decision; also given malformed payloads (as parsed, or the text), to refuse them. */
  register: (event: unknown) => Promise<RegistrationResult>,
): Promise<BatchReport> {
  const config = deps.batchConfig ?? defaultBatchConfig;
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const outcomes = new Map<string, MessageOutcome>();
  const firsts: { message: QueuedRegistration; event: RegistrationEvent }[] = [];
  const malformed: { message: QueuedRegistration; payload: unknown }[] = [];
  const seen = new Set<string>();
  for (const message of messages) {
    const payload = parseBody(message.body);
    const parsed = registrationEventSchema.safeParse(payload);
    if (!parsed.success) {
      malformed.push({ message, payload });
    } else if (seen.has(parsed.data.certificateId)) {
      outcomes.set(message.messageId, { status: "duplicate", certificateId: parsed.data.certificateId });
    } else {
      seen.add(parsed.data.certificateId);
      firsts.push({ message, event: parsed.data });
    }
  }
  // The per-event decision logs (field names only) and counts a malformed event, and refuses it;
  // retrying it cannot help, so it is deleted whatever the decision throws.
  for (const { message, payload } of malformed) {
    const result = await register(payload).catch(
      (): RegistrationResult => ({ outcome: "rejected", reason: "malformed-event" }),
    );
    outcomes.set(message.messageId, { status: "done", result });
  }

  let throttled = false;
  for (const { message, event } of firsts) {
    if (throttled) {
      outcomes.set(message.messageId, retry(message, "batch stopped: throttled", 1, true));
      continue;
    }
    const { certificateId } = event;
    const owner = message.messageId;
    let leased = false;
    try {
      const now = clock();
      const begun = await deps.ledger.begin(certificateId, {
        owner,
        now,
        leaseMs: config.leaseMs,
        eventTimestamp: event.timestamp,
      });
      if (begun.state === "settled") {
        outcomes.set(message.messageId, { status: "duplicate", certificateId });
        continue;
      }
      if (begun.state === "leased") {
        // Another message is registering it: come back once that one is likely done (it settles
        // the certificate, and this repeat is then dropped), or its lease has run out (its
        // consumer died and its message was lost, e.g. a local stack killed mid-flight).
        // Waiting for the lease (not a growing backoff) keeps repeats of a crashed registration out
        // of the dead letters: its lease is taken over within two or three receives.
        const remaining = Math.max(0, begun.leaseUntil - now) / 1000;
        const wait = Math.min(remaining, config.maxRetryDelaySeconds);
        outcomes.set(message.messageId, {
          status: "retry",
          error: "held by another message",
          retryAfterSeconds: Math.max(wait, 0.001),
          throttled: false,
        });
        continue;
      }
      leased = true;
      await (deps.pacer ?? unpaced).take();
      await admitProvisioning({ ...(deps.budget ? { budget: deps.budget } : {}), clock, random });
      const result = await register(event);
      if (isFinal(result)) {
        const settledAt = clock();
        await deps.ledger.settle(certificateId, owner, {
          outcome: result.reason ? `${result.outcome}:${result.reason}` : result.outcome,
          settledAt,
          expiresAt: settledAt + config.settledRetentionMs,
        });
      } else {
        await deps.ledger.release(certificateId, owner);
      }
      outcomes.set(message.messageId, { status: "done", result });
    } catch (error) {
      if (leased) {
        await deps.ledger.release(certificateId, owner).catch((releaseError: unknown) => {
          // The lease expires by itself (leaseMs); the message returns later than that anyway.
          deps.logger.warn("jitr queue: lease not released", {
            certificateId,
            error: describeError(releaseError),
          });
        });
      }
      const isThrottle = error instanceof DomainError && error.kind === "throttled";
      throttled ||= isThrottle;
      const hinted = error instanceof DomainError ? (error.retryAfterSeconds ?? 0) : 0;
      outcomes.set(message.messageId, retry(message, describeError(error), hinted, isThrottle));
    }
  }

  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const message of messages) {
    const outcome = outcomes.get(message.messageId);
    if (outcome?.status !== "retry") continue;
    batchItemFailures.push({ itemIdentifier: message.messageId });
    await deps.queue.retryLater(message.receiptHandle, outcome.retryAfterSeconds).catch((error: unknown) => {
      // Not lost: the message is still reported failed and returns after the queue's visibility timeout.
      deps.logger.warn("jitr queue: retry delay not set", {
        messageId: message.messageId,
        error: describeError(error),
      });
    });
  }
  if (batchItemFailures.length > 0) {
    deps.logger.warn("jitr queue: messages returned to the queue", {
      failed: batchItemFailures.length,
      of: messages.length,
      throttled,
    });
  }
  return { batchItemFailures, outcomes };

  function retry(message: QueuedRegistration, error: string, hintedSeconds: number, isThrottle: boolean) {
    const retryAfterSeconds = Math.max(
      hintedSeconds,
      retryDelaySeconds(message.receiveCount, config, random),
    );
    return { status: "retry" as const, error, retryAfterSeconds, throttled: isThrottle };
  }
}

/** The body as JSON, or the text itself when it is not JSON (the decision refuses it). */
function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
