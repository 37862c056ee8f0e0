import { randomUUID } from "node:crypto";
import type { RegistrationQueue } from "#core/jitr/ports.ts";
import type { QueuedRegistration } from "#core/jitr/process-registration-batch.ts";

/**
 * An in-process stand-in for an SQS standard queue with a Lambda event source mapping, as the CDK
 * stack deploys JITR (lib/constructs/jitr.ts), with the semantics the consumer relies on:
 * - batches of up to `batchSize` messages, at most `maxConcurrency` batches at once (the event
 *   source's ScalingConfig MaximumConcurrency,
 *   https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html);
 * - a received message is invisible for `visibilityTimeoutMs`; the consumer's partial batch
 *   response (`batchItemFailures`) leaves the listed messages in the queue and deletes the rest; a
 *   consumer that throws leaves the whole batch (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html);
 * - `retryLater` is ChangeMessageVisibility: the message returns after that delay instead;
 * - each receive counts; a message whose next receive would exceed `maxReceiveCount` is moved to
 *   the dead letters instead (the redrive policy,
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html).
 * Not emulated: SQS's at-least-once duplicates and its loose ordering (this queue is FIFO among
 * visible messages), long-polling delays.
 */
export type LocalQueueOptions = {
  /** Messages per batch (Lambda's SQS default: 10). */
  batchSize: number;
  /** Batches handled at once (the event source's maximum concurrency). */
  maxConcurrency: number;
  /** How long a received message stays invisible unless deleted or retried (ms). */
  visibilityTimeoutMs: number;
  /** Receives before a message goes to the dead letters instead. */
  maxReceiveCount: number;
  /** The consumer: the messages to keep (failed) in `batchItemFailures`; throwing keeps them all. */
  consume: (
    batch: readonly QueuedRegistration[],
  ) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;
  /** A message moved to the dead letters. */
  onDeadLetter?: (message: QueuedMessage) => void;
  /** A consumer that threw (its batch stays in the queue). */
  onConsumerError?: (error: unknown) => void;
  scheduler?: Scheduler;
};

/** Time and timers, injected so tests advance time themselves. */
export type Scheduler = {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
};

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (run, ms) => {
    const timer = setTimeout(run, ms);
    timer.unref?.();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A message as the queue keeps it. */
export type QueuedMessage = {
  messageId: string;
  body: string;
  receiveCount: number;
  /** When it may be received again (ms). */
  visibleAt: number;
  /** The current receipt handle while it is in flight. */
  receiptHandle?: string;
  sentAt: number;
};

export class LocalQueue implements RegistrationQueue {
  private readonly messages = new Map<string, QueuedMessage>();
  private readonly byReceipt = new Map<string, string>();
  private readonly dead: QueuedMessage[] = [];
  private readonly scheduler: Scheduler;
  private running = 0;
  private timer: { handle: unknown; at: number } | undefined;
  private waiters: (() => void)[] = [];
  private closed = false;
  private pollScheduled = false;
  /** Batches handed to the consumer, and messages received, since the queue was made. */
  readonly stats = { batches: 0, receives: 0, deleted: 0, retried: 0, deadLettered: 0 };

  constructor(private readonly options: LocalQueueOptions) {
    if (!(options.batchSize >= 1 && options.maxConcurrency >= 1 && options.maxReceiveCount >= 1)) {
      throw new RangeError(
        "A local queue needs batchSize, maxConcurrency and maxReceiveCount of at least 1.",
      );
    }
    this.scheduler = options.scheduler ?? realScheduler;
  }

  /** SendMessage: queues the body, visible at once; returns the message id. */
  send(body: string): string {
    if (this.closed) throw new Error("The local queue is closed.");
    const messageId = randomUUID();
    const now = this.scheduler.now();
    this.messages.set(messageId, { messageId, body, receiveCount: 0, visibleAt: now, sentAt: now });
    // The poller's next turn, not this call stack: messages sent together are received together.
    if (!this.pollScheduled) {
      this.pollScheduled = true;
      this.scheduler.setTimeout(() => {
        this.pollScheduled = false;
        this.pump();
      }, 0);
    }
    return messageId;
  }

  /** ChangeMessageVisibility of an in-flight message (an unknown or stale receipt is ignored). */
  async retryLater(receiptHandle: string, delaySeconds: number): Promise<void> {
    const id = this.byReceipt.get(receiptHandle);
    const message = id ? this.messages.get(id) : undefined;
    if (!message || message.receiptHandle !== receiptHandle) return;
    message.visibleAt = this.scheduler.now() + Math.max(0, delaySeconds) * 1000;
  }

  /** Messages in the queue (visible, in flight or waiting to be visible again). */
  get depth(): number {
    return this.messages.size;
  }

  /** Batches being consumed now. */
  get inFlightBatches(): number {
    return this.running;
  }

  /** Messages moved to the dead letters, oldest first (a copy). */
  get deadLetters(): readonly QueuedMessage[] {
    return [...this.dead];
  }

  /** Resolves once the queue holds no message at all (every one deleted or dead-lettered). */
  drained(): Promise<void> {
    if (this.messages.size === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stops the timers; messages still queued are dropped with the queue (the stack is stopping). */
  close(): void {
    this.closed = true;
    if (this.timer) this.scheduler.clearTimeout(this.timer.handle);
    this.timer = undefined;
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /** Hands visible messages to the consumer while there is concurrency left; arms the next timer. */
  private pump(): void {
    if (this.closed) return;
    while (this.running < this.options.maxConcurrency) {
      const batch = this.receive();
      if (batch.length === 0) break;
      this.running += 1;
      this.stats.batches += 1;
      void this.consume(batch);
    }
    this.armTimer();
    this.notifyIfDrained();
  }

  /** ReceiveMessage: up to batchSize visible messages, each receive counted; over the limit → dead letters. */
  private receive(): QueuedRegistration[] {
    const now = this.scheduler.now();
    const batch: QueuedRegistration[] = [];
    for (const message of this.messages.values()) {
      if (batch.length >= this.options.batchSize) break;
      if (message.visibleAt > now) continue;
      if (message.receiveCount >= this.options.maxReceiveCount) {
        this.messages.delete(message.messageId);
        if (message.receiptHandle) this.byReceipt.delete(message.receiptHandle);
        this.dead.push(message);
        this.stats.deadLettered += 1;
        this.options.onDeadLetter?.(message);
        continue;
      }
      message.receiveCount += 1;
      message.visibleAt = now + this.options.visibilityTimeoutMs;
      if (message.receiptHandle) this.byReceipt.delete(message.receiptHandle);
      message.receiptHandle = randomUUID();
      this.byReceipt.set(message.receiptHandle, message.messageId);
      this.stats.receives += 1;
      batch.push({
        messageId: message.messageId,
        receiptHandle: message.receiptHandle,
        body: message.body,
        receiveCount: message.receiveCount,
      });
    }
    return batch;
  }

  private async consume(batch: QueuedRegistration[]): Promise<void> {
    let failed: Set<string>;
    try {
      const answer = await this.options.consume(batch);
      failed = new Set(answer.batchItemFailures.map((f) => f.itemIdentifier));
    } catch (error) {
      this.options.onConsumerError?.(error);
      failed = new Set(batch.map((m) => m.messageId));
    }
    for (const received of batch) {
      const message = this.messages.get(received.messageId);
      // Deleted only with the receipt of this receive (a message that came back meanwhile is another receive).
      if (!message || message.receiptHandle !== received.receiptHandle) continue;
      if (failed.has(received.messageId)) {
        this.stats.retried += 1;
        continue;
      }
      this.messages.delete(received.messageId);
      this.byReceipt.delete(received.receiptHandle);
      this.stats.deleted += 1;
    }
    this.running -= 1;
    this.pump();
  }

  /** One timer, at the earliest moment a waiting message becomes visible. */
  private armTimer(): void {
    // With every slot busy, the next batch's end pumps; below that, no message is visible now.
    if (this.closed || this.running >= this.options.maxConcurrency) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const message of this.messages.values()) earliest = Math.min(earliest, message.visibleAt);
    if (this.timer && this.timer.at <= earliest) return;
    if (this.timer) this.scheduler.clearTimeout(this.timer.handle);
    this.timer = undefined;
    if (!Number.isFinite(earliest)) return;
    const delay = Math.max(0, earliest - this.scheduler.now());
    const at = earliest;
    this.timer = {
      at,
      handle: this.scheduler.setTimeout(() => {
        if (this.timer?.at === at) this.timer = undefined;
        this.pump();
      }, delay),
    };
  }

  private notifyIfDrained(): void {
    if (this.messages.size === 0 && this.running === 0)
      for (const resolve of this.waiters.splice(0)) resolve();
  }
}
