import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { QueuedRegistration } from "#core/jitr/process-registration-batch.ts";
import { LocalQueue, type LocalQueueOptions, type Scheduler } from "#local/mqtt/local-queue.ts";

/** Time that moves only when the test says so; timers fire in order as it passes them. */
class ManualScheduler implements Scheduler {
  private time = 0;
  private timers: { at: number; run: () => void; id: number }[] = [];
  private nextId = 1;
  now() {
    return this.time;
  }
  setTimeout(run: () => void, ms: number) {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, run, id });
    return id;
  }
  clearTimeout(handle: unknown) {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  /** Moves time forward by `ms`, firing due timers (and letting the consumers' promises settle). */
  async advance(ms: number) {
    const until = this.time + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.run();
    }
    this.time = until;
    await settle();
  }
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

type Consumer = LocalQueueOptions["consume"];

function queueWith(consume: Consumer, overrides: Partial<LocalQueueOptions> = {}) {
  const scheduler = new ManualScheduler();
  const dead: string[] = [];
  const queue = new LocalQueue({
    batchSize: 3,
    maxConcurrency: 2,
    visibilityTimeoutMs: 60_000,
    maxReceiveCount: 3,
    consume,
    onDeadLetter: (m) => dead.push(m.body),
    scheduler,
    ...overrides,
  });
  return { queue, scheduler, dead };
}

describe("local/mqtt/local-queue (SQS + event source semantics)", () => {
  it("hands out batches of at most batchSize, never more than maxConcurrency at once", async () => {
    const started: QueuedRegistration[][] = [];
    const finish: (() => void)[] = [];
    const { queue, scheduler } = queueWith(
      (batch) =>
        new Promise((resolve) => {
          started.push([...batch]);
          finish.push(() => resolve({ batchItemFailures: [] }));
        }),
    );
    for (let i = 0; i < 8; i++) queue.send(`m${i}`);
    await scheduler.advance(0);
    assert.deepEqual(
      started.map((b) => b.map((m) => m.body)),
      [
        ["m0", "m1", "m2"],
        ["m3", "m4", "m5"],
      ],
      "two batches of three; the rest waits for a free slot",
    );
    assert.equal(queue.inFlightBatches, 2);
    finish.shift()?.();
    await scheduler.advance(0);
    assert.deepEqual(
      started[2]?.map((m) => m.body),
      ["m6", "m7"],
    );
    for (const done of finish.splice(0)) done();
    await scheduler.advance(0);
    assert.equal(queue.depth, 0);
    assert.deepEqual(queue.stats, { batches: 3, receives: 8, deleted: 8, retried: 0, deadLettered: 0 });
  });

  it("deletes the messages a partial batch response does not name; the named ones return after their retry delay", async () => {
    const seen: { body: string; receiveCount: number; at: number }[] = [];
    const { queue, scheduler } = queueWith(async (batch) => {
      for (const m of batch) seen.push({ body: m.body, receiveCount: m.receiveCount, at: scheduler.now() });
      const failing = batch.filter((m) => m.body === "bad" && m.receiveCount < 2);
      for (const m of failing) await queue.retryLater(m.receiptHandle, 5);
      return { batchItemFailures: failing.map((m) => ({ itemIdentifier: m.messageId })) };
    });
    queue.send("good");
    queue.send("bad");
    await scheduler.advance(0);
    assert.equal(queue.depth, 1, "good deleted, bad kept");
    await scheduler.advance(4_999);
    assert.equal(seen.length, 2, "invisible during its retry delay");
    await scheduler.advance(1);
    assert.deepEqual(seen.at(-1), { body: "bad", receiveCount: 2, at: 5_000 });
    assert.equal(queue.depth, 0);
  });

  it("without a retry delay a failed message returns after the visibility timeout; a consumer that throws keeps its whole batch", async () => {
    let calls = 0;
    const { queue, scheduler } = queueWith(async () => {
      calls++;
      if (calls === 1) throw new Error("crashed");
      return { batchItemFailures: [] };
    });
    queue.send("a");
    queue.send("b");
    await scheduler.advance(0);
    assert.equal(calls, 1);
    assert.equal(queue.depth, 2);
    await scheduler.advance(59_999);
    assert.equal(calls, 1);
    await scheduler.advance(1);
    assert.equal(calls, 2);
    assert.equal(queue.depth, 0);
  });

  it("moves a message to the dead letters instead of a receive beyond maxReceiveCount", async () => {
    const counts: number[] = [];
    const { queue, scheduler, dead } = queueWith(async (batch) => {
      for (const m of batch) {
        counts.push(m.receiveCount);
        await queue.retryLater(m.receiptHandle, 1);
      }
      return { batchItemFailures: batch.map((m) => ({ itemIdentifier: m.messageId })) };
    });
    queue.send("poison");
    for (let i = 0; i < 5; i++) await scheduler.advance(1_000);
    assert.deepEqual(counts, [1, 2, 3], "received maxReceiveCount times");
    assert.deepEqual(dead, ["poison"]);
    assert.equal(queue.depth, 0);
    assert.equal(queue.deadLetters[0]?.receiveCount, 3);
    await queue.drained();
  });

  it("ignores a stale receipt handle (a message received again meanwhile)", async () => {
    const receipts: string[] = [];
    const { queue, scheduler } = queueWith(
      async (batch) => {
        receipts.push(...batch.map((m) => m.receiptHandle));
        return { batchItemFailures: batch.map((m) => ({ itemIdentifier: m.messageId })) };
      },
      { visibilityTimeoutMs: 1_000 },
    );
    queue.send("x");
    await scheduler.advance(0);
    await scheduler.advance(1_000);
    assert.equal(receipts.length, 2);
    await queue.retryLater(receipts[0]!, 600);
    await scheduler.advance(1_000);
    assert.equal(receipts.length, 3, "the old receipt did not delay the message");
    queue.close();
  });
});
