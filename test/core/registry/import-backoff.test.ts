import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DynamoDbRegistry } from "#adapters/dynamodb-registry.ts";
import { type ImportCheckpoint, type ImportRow, importDevices } from "#core/registry/import-devices.ts";
import type { ImportOutcome, NewDevice, Registry, SecretStore } from "#core/registry/ports.ts";
import { type LocalDynamo, startLocalDynamo } from "#local/dynamodb.ts";
import { localRegion } from "#local/local-aws.ts";

const secrets: SecretStore = {
  getProductSecret: async () => undefined,
  createProductSecret: async () => false,
  getRegistryKeys: async () => ({ currentKeyId: "k1", keys: new Map([["k1", Buffer.alloc(32, 7)]]) }),
};

async function* rowsOf(serials: string[], productKey: string): AsyncGenerator<ImportRow> {
  let line = 1;
  for (const serialNumber of serials) yield { line: ++line, record: { serialNumber, productKey } };
}

/**
 * The import under DynamoDB push-back, against dynalite behind the fault proxy: unprocessed items
 * (HTTP 200, everything handed back) and throttling errors (ProvisionedThroughputExceededException,
 * ThrottlingException) are retried with exponential backoff and full jitter until the import
 * completes; the sleeps requested are recorded (no real waiting), the SDK's own retries are off
 * (maxAttempts 1) so every retry is the registry's.
 */
describe("import: backoff on unprocessed items and throttling, never an abort; checkpoints", () => {
  let dynamo: LocalDynamo;
  let client: DynamoDBClient;
  let registry: DynamoDbRegistry;
  const sleeps: number[] = [];
  const table = "registry";

  before(async () => {
    dynamo = await startLocalDynamo({ port: 0, host: "127.0.0.1", tableName: table, faultInjection: true });
    client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: localRegion,
      credentials: { accessKeyId: "DYNALITE", secretAccessKey: "dynalite-does-not-check" },
      maxAttempts: 1,
    });
    registry = new DynamoDbRegistry(
      DynamoDBDocumentClient.from(client),
      table,
      { random: () => 0.5 },
      async (ms) => {
        sleeps.push(ms);
      },
    );
    await registry.createProduct({
      productKey: "pushback",
      name: "pushback",
      authMode: "device-secret",
      allowServerKeys: false,
    } as Parameters<DynamoDbRegistry["createProduct"]>[0]);
  });
  after(async () => {
    client.destroy();
    await dynamo.close();
  });

  async function count(productKey: string): Promise<number> {
    let n = 0;
    let cursor: string | undefined;
    do {
      const page = await registry.listDevices(productKey, { limit: 1000, ...(cursor ? { cursor } : {}) });
      n += page.devices.length;
      cursor = page.cursor;
    } while (cursor);
    return n;
  }

  it("waits out unprocessed items and throttling with doubling, capped, jittered delays and completes", async () => {
    const faults = dynamo.faults!;
    faults.inject({ operation: "BatchGetItem", unprocessed: true, times: 3 });
    faults.inject({ operation: "BatchGetItem", errorType: "ThrottlingException", status: 400, times: 2 });
    faults.inject({ operation: "BatchWriteItem", unprocessed: true, times: 6 });
    faults.inject({
      operation: "BatchWriteItem",
      errorType: "ProvisionedThroughputExceededException",
      status: 400,
      times: 5,
    });
    const serials = Array.from({ length: 300 }, (_, i) => `PB-${String(i).padStart(4, "0")}`);
    sleeps.length = 0;
    const report = await importDevices({ registry, secrets }, rowsOf(serials, "pushback"), {
      concurrency: 1,
    });
    assert.equal(report.written, 300);
    assert.equal(report.rejected.length, 0);
    assert.equal(report.unprocessedRetries, 3 + 6);
    assert.equal(report.throttledRetries, 2 + 5);
    assert.equal(await count("pushback"), 300, "every row is in the registry");
    // random() = 0.5: half of min(5 s, 50 ms * 2^failures), the count restarting per batch call.
    const half = (failures: number) => 0.5 * Math.min(5000, 50 * 2 ** failures);
    assert.deepEqual(sleeps, [
      ...[0, 1, 2, 3, 4].map(half), // BatchGetItem: 3 unprocessed, 2 throttled
      ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(half), // BatchWriteItem: 6 unprocessed, 5 throttled
    ]);
    assert.equal(Math.max(...sleeps), 2500, "capped at 5 s (times the jitter)");
    faults.clear();
  });

  it("throws what is not push-back (after the SDK's retries), naming the call", async () => {
    dynamo.faults!.inject({ operation: "BatchWriteItem", errorType: "ValidationException", status: 400 });
    await assert.rejects(
      registry.importDevices([{ serialNumber: "PB-BAD-1", productKey: "pushback" }]),
      (error: unknown) => error instanceof Error && /BatchWriteItem/.test(error.message),
    );
    dynamo.faults!.clear();
  });

  it("checkpoints only the line every earlier row is written up to, and resumes after it", async () => {
    // Batches of 100 rows; the first batch's write is held until the second and third finish.
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const later: Registry = Object.create(registry, {
      importDevices: {
        value: async (devices: NewDevice[]): Promise<ImportOutcome> => {
          const first = calls++ === 0;
          if (first) await held;
          return registry.importDevices(devices);
        },
      },
    });
    const serials = Array.from({ length: 300 }, (_, i) => `CP-${String(i).padStart(4, "0")}`);
    // Line 50 is a duplicate of line 2, line 160 a bad serial: rejected the same on resume.
    serials[48] = serials[0]!;
    serials[158] = "bad serial!";
    const checkpoints: ImportCheckpoint[] = [];
    const run = importDevices({ registry: later, secrets }, rowsOf(serials, "pushback"), {
      concurrency: 3,
      onCheckpoint: (c) => {
        checkpoints.push(c);
      },
      // Batches 2 and 3 (100 + 98 rows) finished: let batch 1 go.
      onProgress: (done) => {
        if (done === 198) release();
      },
    });
    const report = await run;
    assert.equal(report.written, 298);
    assert.deepEqual(
      checkpoints.map((c) => c.line),
      [301],
      "batches 2 and 3 finished first: nothing to checkpoint until batch 1 did, then all three at once",
    );
    assert.equal(checkpoints[0]!.outcome.written, 298);

    // Resuming after line 101 (the first batch's last line) sends only what follows it.
    const more = [...serials, "CP-0300", "CP-0301"];
    const resumed = await importDevices({ registry, secrets }, rowsOf(more, "pushback"), {
      resumeAfterLine: 101,
    });
    assert.equal(resumed.resumedRows, 99, "lines 2-101 less the duplicate on line 50");
    assert.equal(resumed.written, 2, "only the two new rows are written");
    assert.equal(resumed.skippedExisting, 298 - 99, "rows after the checkpoint are checked, not rewritten");
    assert.deepEqual(
      resumed.rejected.map((r) => [r.line, r.field]),
      report.rejected.map((r) => [r.line, r.field]),
      "the same rejections, earlier lines included",
    );
  });
});
