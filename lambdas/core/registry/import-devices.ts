import * as z from "zod";
import { productKeySchema, serialNumberSchema } from "./model.ts";
import type { ImportOutcome, NewDevice, Registry, SecretStore } from "./ports.ts";
import { type RegistryKeys, sealSecret } from "./sealed-secret.ts";

/** One CSV row as parsed at the edge: its line number and its cells by column name. */
export type ImportRow = { line: number; record: Record<string, string | undefined> };

export type RejectedRow = { line: number; field: string; reason: string };

export type ImportReport = ImportOutcome & {
  rejected: RejectedRow[];
  rows: number;
  /** Rows on lines up to `resumeAfterLine`: written by an earlier run, validated again, not sent. */
  resumedRows: number;
};

/** All rows up to `line` are in the registry; `outcome` sums those rows only. */
export type ImportCheckpoint = { line: number; outcome: ImportOutcome };

export const IMPORT_COLUMNS = ["serialNumber", "productKey", "deviceSecret"] as const;

const rowSchema = z.object({
  serialNumber: serialNumberSchema,
  productKey: productKeySchema,
  deviceSecret: z.string().min(16, "at least 16 characters").max(256).optional(),
});

/** Rows per registry call, and the window within which their order is shuffled. */
const BATCH = 100;

/**
 * Imports device rows into the registry: each row is validated (its own fields, a known product,
 * no serial twice in the file), good rows are written in batches with several batches in flight,
 * bad rows are reported by line and field and never written. Existing serials are left untouched,
 * so re-running the same file is safe.
 *
 * Writes are spread: each batch's rows go out in a shuffled order (a sorted file does not walk
 * one key range), and their index keys are sharded by a hash of the serial (registry-table.ts).
 * Throughput push-back is waited out by the registry, never an abort. Resuming: after each batch
 * `onCheckpoint` names the line up to which every row is written (batches finish out of order,
 * so it is the lowest unfinished one); a later run given `resumeAfterLine` validates those rows
 * again (the same duplicates and rejections) without sending them.
 */
export async function importDevices(
  deps: { registry: Registry; secrets: SecretStore },
  rows: AsyncIterable<ImportRow>,
  options: {
    defaultProductKey?: string;
    concurrency?: number;
    onProgress?: (done: number) => void;
    resumeAfterLine?: number;
    onCheckpoint?: (checkpoint: ImportCheckpoint) => void;
    random?: () => number;
  } = {},
): Promise<ImportReport> {
  const rejected: RejectedRow[] = [];
  const seen = new Set<string>();
  const products = new Map<string, Promise<boolean>>();
  const productExists = (key: string) => {
    let known = products.get(key);
    if (!known) {
      known = deps.registry.getProduct(key).then((p) => p !== undefined);
      products.set(key, known);
    }
    return known;
  };
  let registryKeys: Promise<RegistryKeys> | undefined;
  const sealingKeys = () => (registryKeys ??= deps.secrets.getRegistryKeys());
  const concurrency = options.concurrency ?? 4;
  const resumeAfterLine = options.resumeAfterLine ?? 0;
  const random = options.random ?? Math.random;
  const inFlight = new Set<Promise<void>>();
  const totals: ImportOutcome = {
    written: 0,
    skippedExisting: 0,
    unprocessedRetries: 0,
    throttledRetries: 0,
  };
  // Batches in file order, for the checkpoint: the head is the oldest one not yet finished.
  const order: { lastLine: number; outcome?: ImportOutcome }[] = [];
  const checkpointed: ImportOutcome = {
    written: 0,
    skippedExisting: 0,
    unprocessedRetries: 0,
    throttledRetries: 0,
  };
  let done = 0;
  let rowCount = 0;
  let resumedRows = 0;
  let lastLine = 0;
  let batch: NewDevice[] = [];

  const advanceCheckpoint = () => {
    let line: number | undefined;
    while (order[0]?.outcome) {
      const finished = order.shift()!;
      addOutcome(checkpointed, finished.outcome!);
      line = finished.lastLine;
    }
    if (line !== undefined) options.onCheckpoint?.({ line, outcome: { ...checkpointed } });
  };

  const flush = async () => {
    if (batch.length === 0) return;
    const devices = shuffle(batch, random);
    batch = [];
    const slot: { lastLine: number; outcome?: ImportOutcome } = { lastLine };
    order.push(slot);
    const job = deps.registry.importDevices(devices).then((outcome) => {
      addOutcome(totals, outcome);
      slot.outcome = outcome;
      done += devices.length;
      options.onProgress?.(done);
      advanceCheckpoint();
    });
    const tracked = job.finally(() => inFlight.delete(tracked));
    // Seen by the race / the final all; this keeps a second failure from being "unhandled".
    tracked.catch(() => undefined);
    inFlight.add(tracked);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  };

  for await (const { line, record } of rows) {
    rowCount++;
    lastLine = line;
    const resumed = line <= resumeAfterLine;
    const parsed = rowSchema.safeParse({
      serialNumber: record.serialNumber?.trim(),
      productKey: record.productKey?.trim() || options.defaultProductKey,
      deviceSecret: record.deviceSecret?.trim() || undefined,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      rejected.push({ line, field: String(issue.path[0] ?? "row"), reason: issue.message });
      continue;
    }
    const { serialNumber, productKey, deviceSecret } = parsed.data;
    if (seen.has(serialNumber)) {
      rejected.push({ line, field: "serialNumber", reason: "appears more than once in this file" });
      continue;
    }
    if (!(await productExists(productKey))) {
      rejected.push({ line, field: "productKey", reason: `unknown product ${productKey}` });
      continue;
    }
    seen.add(serialNumber);
    if (resumed) {
      resumedRows++;
      done++;
      if (resumedRows % BATCH === 0) options.onProgress?.(done);
      continue;
    }
    batch.push({
      serialNumber,
      productKey,
      ...(deviceSecret ? { sealedSecret: sealSecret(deviceSecret, await sealingKeys(), serialNumber) } : {}),
    });
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  await Promise.all(inFlight);
  return { ...totals, rejected, rows: rowCount, resumedRows };
}

function addOutcome(sum: ImportOutcome, outcome: ImportOutcome): void {
  sum.written += outcome.written;
  sum.skippedExisting += outcome.skippedExisting;
  sum.unprocessedRetries += outcome.unprocessedRetries;
  sum.throttledRetries += outcome.throttledRetries;
}

/** A shuffled copy (Fisher-Yates). */
function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
