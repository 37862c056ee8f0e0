import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DescribeCertificateCommand } from "@aws-sdk/client-iot";
import { DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoDbJitrLedger, jitrLedgerKey } from "#adapters/dynamodb-jitr-ledger.ts";
import { DynamoDbProvisioningBudget } from "#adapters/dynamodb-provisioning-budget.ts";
import { AwsCaRegistry } from "#adapters/iot-ca-registry.ts";
import { AwsIotProvisioning } from "#adapters/iot-provisioning.ts";
import { makePacer } from "#core/jitr/budget.ts";
import {
  type BatchConfig,
  defaultBatchConfig,
  type QueuedRegistration,
  retryDelaySeconds,
} from "#core/jitr/process-registration-batch.ts";
import { registerCaCertificate } from "#core/jitr/register-ca-certificate.ts";
import { silentLogger } from "#core/logger.ts";
import { CertificateIssuer, createKeyPair, createSelfSignedCa } from "#core/pki/issue.ts";
import { makeJitrBatchProcessor, makeJitrQueueHandler } from "#handlers/jitr-registration.ts";
import { LocalQueue } from "#local/mqtt/local-queue.ts";
import { createDevicePolicy } from "#test/support/device-ca.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

const eventFixture = JSON.parse(
  readFileSync(new URL("../fixtures/events/jitr-certificate-registered.json", import.meta.url), "utf8"),
) as Record<string, unknown>;

/** Waits (by polling, no timing asserted) until the queue has no batch in flight. */
async function idle(queue: LocalQueue) {
  while (queue.inFlightBatches > 0) await new Promise((resolve) => setTimeout(resolve, 5));
}

/**
 * The JITR queue consumer (lambdas/core/jitr/process-registration-batch.ts through the handler's
 * processor) against the local stack: the ledger in dynalite, the real use case with the real
 * IoTClient against the emulator (no SDK retries, so an injected fault surfaces at once), and the
 * emulator's call counts to show what a repeated event costs.
 */
describe("JITR queue consumer: dedupe, partial batch failures, throttling, redrive", {
  concurrency: 1,
}, () => {
  let stack: Stack;
  let issuer: CertificateIssuer;
  let dynamo: DynamoDBDocumentClient;
  let ledger: DynamoDbJitrLedger;
  const retries: { receiptHandle: string; delaySeconds: number }[] = [];
  const serials = Array.from({ length: 24 }, (_, i) => `Q-${String(i).padStart(4, "0")}`);
  let n = 0;
  let m = 0;
  const config: BatchConfig = { ...defaultBatchConfig, baseRetryDelaySeconds: 2, maxRetryDelaySeconds: 60 };

  before(async () => {
    stack = await startTestStack({ dynamoFaultInjection: true });
    await createDevicePolicy(stack.iotClient);
    const ca = await createSelfSignedCa({ subject: { commonName: "JITR queue test CA" } });
    await registerCaCertificate(
      { iot: new AwsCaRegistry(stack.iotClient) },
      { caCertPem: ca.certPem, caPrivateKeyPem: ca.privateKeyPem },
    );
    issuer = await CertificateIssuer.create(ca);
    await seedProduct(
      stack.services,
      { productKey: "jitr-queue", name: "JITR queue", trustedCaIds: [issuer.caCertificateId] },
      serials,
    );
    dynamo = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: stack.endpoints.dynamodb,
        region: stack.endpoints.region,
        credentials: stack.credentials,
      }),
    );
    ledger = new DynamoDbJitrLedger(dynamo, stack.endpoints.tableName);
  });
  after(async () => {
    dynamo?.destroy();
    await stack?.stop();
  });

  const deps = (overrides: Record<string, unknown> = {}) => ({
    registry: stack.services.registry,
    templates: stack.services.templates,
    iot: new AwsIotProvisioning(stack.iotClient),
    logger: silentLogger,
    ledger,
    queue: {
      retryLater: async (receiptHandle: string, delaySeconds: number) =>
        void retries.push({ receiptHandle, delaySeconds }),
    },
    batchConfig: config,
    random: () => 0.5,
    ...overrides,
  });

  /** A device's first connection: its certificate registered PENDING_ACTIVATION by the emulator. */
  const pendingCertificate = async () => {
    const serial = serials[n++]!;
    const keys = await createKeyPair("EC-P256");
    const issued = await issuer.issue({
      subjectPublicKey: keys.publicKeyPem,
      subject: { commonName: serial },
    });
    const { certificate } = await stack.iot.registerCertificateFromCa(issued.certificatePem);
    return { serial, certificateId: certificate.certificateId };
  };
  /** The message the rule's sqs action sends for an event of this certificate. */
  const message = (certificateId: string, receiveCount = 1, timestamp = Date.now()): QueuedRegistration => {
    const id = `msg-${++m}`;
    return {
      messageId: id,
      receiptHandle: `receipt-${id}`,
      body: JSON.stringify({
        ...eventFixture,
        certificateId,
        caCertificateId: issuer.caCertificateId,
        timestamp,
      }),
      receiveCount,
    };
  };
  const statusOf = async (certificateId: string) =>
    (await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }))).certificateDescription
      ?.status;
  const calls = (operation: string) => stack.iot.faults.calls(operation);
  /** Calls per operation since a snapshot of `allCalls()` (operations with none left out). */
  const callsSince = (before: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(stack.iot.faults.allCalls())
        .map(([op, count]) => [op, count - (before[op] ?? 0)] as const)
        .filter(([, count]) => count > 0),
    );

  it("registers a certificate once however often its event is in the batch", async () => {
    // What one registration costs, per operation (the emulator's counts); the product's first
    // registration may set up per-product resources once, so the second one is the measure.
    const first = await pendingCertificate();
    await makeJitrBatchProcessor(deps())([message(first.certificateId)]);
    const single = await pendingCertificate();
    const before1 = stack.iot.faults.allCalls();
    await makeJitrBatchProcessor(deps())([message(single.certificateId)]);
    const one = callsSince(before1);
    assert.ok((one.DescribeCertificate ?? 0) >= 1 && (one.UpdateCertificate ?? 0) >= 1);

    const a = await pendingCertificate();
    const b = await pendingCertificate();
    const batch = [
      message(a.certificateId),
      message(a.certificateId),
      message(b.certificateId),
      message(a.certificateId),
    ];
    const before2 = stack.iot.faults.allCalls();
    const report = await makeJitrBatchProcessor(deps())(batch);
    assert.deepEqual(report.batchItemFailures, []);
    // The per-certificate calls on the 10-TPS operations: two registrations' worth, none for the repeats.
    const perCertificate = (calls: Record<string, number>) => ({
      DescribeCertificate: calls.DescribeCertificate,
      UpdateCertificate: calls.UpdateCertificate,
    });
    const batchCalls = perCertificate(callsSince(before2));
    assert.deepEqual(batchCalls, {
      DescribeCertificate: 2 * (one.DescribeCertificate ?? 0),
      UpdateCertificate: 2 * (one.UpdateCertificate ?? 0),
    });
    assert.deepEqual(
      batch.map((msg) => report.outcomes.get(msg.messageId)?.status),
      ["done", "duplicate", "done", "duplicate"],
    );
    assert.deepEqual(report.outcomes.get(batch[0]!.messageId), {
      status: "done",
      result: { outcome: "activated" },
    });
    assert.equal(await statusOf(a.certificateId), "ACTIVE");
    assert.equal(await statusOf(b.certificateId), "ACTIVE");
    const record = await dynamo.send(
      new GetCommand({ TableName: stack.endpoints.tableName, Key: jitrLedgerKey(a.certificateId) }),
    );
    assert.equal(record.Item?.state, "settled");
    assert.equal(record.Item?.outcome, "activated");
  });

  it("drops a repeat published before the settlement without any AWS IoT call; decides a newer event again", async () => {
    const a = await pendingCertificate();
    const publishedAt = Date.now();
    await makeJitrBatchProcessor(deps())([message(a.certificateId, 1, publishedAt)]);
    const before = stack.iot.faults.allCalls();
    const repeat = message(a.certificateId, 1, publishedAt + 1);
    const report = await makeJitrBatchProcessor(deps())([repeat]);
    assert.deepEqual(report.outcomes.get(repeat.messageId), {
      status: "duplicate",
      certificateId: a.certificateId,
    });
    assert.deepEqual(stack.iot.faults.allCalls(), before, "no AWS IoT call for a repeat");

    const newer = message(a.certificateId, 1, Date.now() + 60_000);
    const again = await makeJitrBatchProcessor(deps())([newer]);
    assert.deepEqual(again.outcomes.get(newer.messageId), {
      status: "done",
      result: { outcome: "already-active" },
    });
  });

  it("returns a repeat to the queue while another message holds the certificate, until the lease ends; a dead holder's lease is taken over", async () => {
    const a = await pendingCertificate();
    const at = Date.now();
    assert.deepEqual(
      await ledger.begin(a.certificateId, { owner: "other", now: at, leaseMs: 30_000, eventTimestamp: at }),
      { state: "taken" },
    );
    const describesBefore = calls("DescribeCertificate");
    const msg = message(a.certificateId);
    retries.length = 0;
    const report = await makeJitrBatchProcessor(deps({ clock: () => at + 10_000 }))([msg]);
    assert.deepEqual(report.batchItemFailures, [{ itemIdentifier: msg.messageId }], "kept, not dropped");
    assert.deepEqual(
      retries,
      [{ receiptHandle: msg.receiptHandle, delaySeconds: 20 }],
      "back when the lease ends",
    );
    assert.equal(calls("DescribeCertificate"), describesBefore, "no AWS IoT call");
    assert.equal(await statusOf(a.certificateId), "PENDING_ACTIVATION");

    // The holder never came back (its consumer died with its message): past the lease it is taken over.
    const later = await makeJitrBatchProcessor(deps({ clock: () => at + 30_001 }))([
      { ...msg, receiveCount: 2 },
    ]);
    assert.deepEqual(later.batchItemFailures, []);
    assert.equal(await statusOf(a.certificateId), "ACTIVE");
  });

  it("returns only the failed message (partial batch response) after an exponential backoff; its lease is released", async () => {
    const a = await pendingCertificate();
    const b = await pendingCertificate();
    const failing = message(a.certificateId, 3);
    const fine = message(b.certificateId);
    retries.length = 0;
    // The registry read of the first registration fails (each of the local client's 5 attempts).
    stack.dynamoFaults?.inject({ operation: "GetItem", times: 5 });
    try {
      const report = await makeJitrBatchProcessor(deps())([failing, fine]);
      assert.deepEqual(report.batchItemFailures, [{ itemIdentifier: failing.messageId }]);
      assert.equal(report.outcomes.get(fine.messageId)?.status, "done");
    } finally {
      stack.dynamoFaults?.clear();
    }
    // Third receive: base 2 s × 2² = 8 s, the jitter (0.5) puts it at 6 s.
    assert.deepEqual(retries, [{ receiptHandle: failing.receiptHandle, delaySeconds: 6 }]);
    assert.equal(
      retryDelaySeconds(3, config, () => 0.5),
      6,
    );
    assert.equal(
      retryDelaySeconds(20, config, () => 0.999),
      59.97,
      "capped at 60 s",
    );
    assert.equal(await statusOf(a.certificateId), "PENDING_ACTIVATION");
    const retried = await makeJitrBatchProcessor(deps())([{ ...failing, receiveCount: 4 }]);
    assert.deepEqual(retried.batchItemFailures, []);
    assert.equal(await statusOf(a.certificateId), "ACTIVE", "the returned message registers it");
  });

  it("a throttled call returns its message and the rest of the batch unprocessed, with a backoff", async () => {
    const a = await pendingCertificate();
    const b = await pendingCertificate();
    const c = await pendingCertificate();
    const batch = [message(a.certificateId), message(b.certificateId), message(c.certificateId)];
    retries.length = 0;
    stack.iot.faults.inject({ operation: "DescribeCertificate", error: "ThrottlingException", times: 1 });
    const describesBefore = calls("DescribeCertificate");
    const report = await makeJitrBatchProcessor(deps())(batch);
    assert.deepEqual(
      report.batchItemFailures.map((f) => f.itemIdentifier),
      batch.map((msg) => msg.messageId),
      "all three back in the queue",
    );
    assert.equal(calls("DescribeCertificate") - describesBefore, 1, "the batch stopped at the throttle");
    assert.deepEqual(
      retries.map((r) => r.delaySeconds),
      [2, 1.5, 1.5],
      "the throttled one waits its Retry-After (2 s), the others the first backoff step",
    );
    const first = report.outcomes.get(batch[0]!.messageId);
    assert.equal(first?.status === "retry" && first.throttled, true);
    assert.ok(
      retries.every((r) => r.delaySeconds >= 1),
      "never a tight loop",
    );
    const device = await stack.services.registry.getDevice(a.serial);
    assert.equal(device?.status, "registered");
    assert.equal(device?.claim, undefined, "the claim was released by the undo");
    for (const id of [a, b, c]) assert.equal(await statusOf(id.certificateId), "PENDING_ACTIVATION");

    const again = await makeJitrQueueHandler(deps())({
      Records: batch.map((msg) => ({
        messageId: msg.messageId,
        receiptHandle: msg.receiptHandle,
        body: msg.body,
        attributes: { ApproximateReceiveCount: "2" },
      })),
    });
    assert.deepEqual(again, { batchItemFailures: [] });
    for (const id of [a, b, c]) assert.equal(await statusOf(id.certificateId), "ACTIVE");
  });

  it("shares the account's provisioning budget with vending: a refused take returns the rest of the batch until its place", async () => {
    const a = await pendingCertificate();
    const b = await pendingCertificate();
    const c = await pendingCertificate();
    // The real budget in dynalite at 2 provisionings/s (one per half-second window), at a fixed
    // instant far from any other test's windows.
    const at = Date.now() + 10_000_000;
    const budget = new DynamoDbProvisioningBudget(dynamo, stack.endpoints.tableName, {
      ratePerSecond: 2,
      shards: 1,
    });
    const batch = [message(a.certificateId), message(b.certificateId), message(c.certificateId)];
    retries.length = 0;
    const report = await makeJitrBatchProcessor(deps({ budget, clock: () => at }))(batch);
    assert.deepEqual(report.outcomes.get(batch[0]!.messageId), {
      status: "done",
      result: { outcome: "activated" },
    });
    assert.deepEqual(
      report.batchItemFailures.map((f) => f.itemIdentifier),
      [batch[1]!.messageId, batch[2]!.messageId],
    );
    const refused = report.outcomes.get(batch[1]!.messageId);
    assert.equal(refused?.status === "retry" && refused.throttled, true);
    assert.ok(retries.every((r) => r.delaySeconds >= 1));
    assert.equal(await statusOf(b.certificateId), "PENDING_ACTIVATION", "no AWS IoT call before admission");
    const lease = await dynamo.send(
      new GetCommand({ TableName: stack.endpoints.tableName, Key: jitrLedgerKey(b.certificateId) }),
    );
    assert.equal(lease.Item?.leaseUntil, 0, "the refused message's lease is released");
  });

  it("through the local queue: a message that keeps failing is dead-lettered after maxReceiveCount receives", async () => {
    const a = await pendingCertificate();
    let queue!: LocalQueue;
    const process = makeJitrBatchProcessor(
      deps({
        queue: { retryLater: (handle: string, seconds: number) => queue.retryLater(handle, seconds) },
        batchConfig: { ...config, baseRetryDelaySeconds: 0.02, maxRetryDelaySeconds: 0.1 },
      }),
    );
    const dead: string[] = [];
    queue = new LocalQueue({
      batchSize: 10,
      maxConcurrency: 2,
      visibilityTimeoutMs: 60_000,
      maxReceiveCount: 3,
      consume: process,
      onDeadLetter: (msg) => dead.push(msg.body),
    });
    stack.dynamoFaults?.inject({ operation: "GetItem", times: 100 });
    try {
      queue.send(message(a.certificateId).body);
      await queue.drained();
    } finally {
      stack.dynamoFaults?.clear();
      await idle(queue);
      queue.close();
    }
    assert.equal(dead.length, 1);
    assert.equal(JSON.parse(dead[0]!).certificateId, a.certificateId);
    assert.equal(queue.deadLetters[0]?.receiveCount, 3);
    assert.deepEqual(queue.stats, { batches: 3, receives: 3, deleted: 0, retried: 3, deadLettered: 1 });
    assert.equal(
      await statusOf(a.certificateId),
      "PENDING_ACTIVATION",
      "left for the device's next connection",
    );
  });

  it("paces registrations at the budget: the n-th waits n intervals (injected clock)", async () => {
    let now = 1_000;
    const waits: number[] = [];
    const pacer = makePacer(
      10,
      () => now,
      async (ms) => {
        waits.push(ms);
      },
    );
    await Promise.all([pacer.take(), pacer.take(), pacer.take()]);
    assert.deepEqual(waits, [100, 200]);
    now += 1_000;
    await pacer.take();
    assert.deepEqual(waits, [100, 200], "a quiet second later: no wait");
  });
});
