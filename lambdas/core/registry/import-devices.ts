import * as z from "zod";
import { productKeySchema, serialNumberSchema } from "./model.ts";
import type { ImportOutcome, NewDevice, Registry, SecretStore } from "./ports.ts";
import { type RegistryKeys, sealSecret } from "./sealed-secret.ts";

/** One CSV row as parsed at the edge: its line number and its cells by column name. */
export type ImportRow = { line: number; record: Record<string, string | undefined> };

export type RejectedRow = { line: number; field: string; reason: string };

export type ImportReport = ImportOutcome & { rejected: RejectedRow[]; rows: number };

export const IMPORT_COLUMNS = ["serialNumber", "productKey", "deviceSecret"] as const;

const rowSchema = z.object({
  serialNumber: serialNumberSchema,
  productKey: productKeySchema,
  deviceSecret: z.string().min(16, "at least 16 characters").max(256).optional(),
});

const BATCH = 100;

/**
 * Imports device rows into the registry: each row is validated (its own fields, a known product,
 * no serial twice in the file), good rows are written in batches with several batches in flight,
 * bad rows are reported by line and field and never written. Existing serials are left untouched,
 * so re-running the same file is safe.
 */
export async function importDevices(
  deps: { registry: Registry; secrets: SecretStore },
  rows: AsyncIterable<ImportRow>,
  options: { defaultProductKey?: string; concurrency?: number; onProgress?: (done: number) => void } = {},
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
  const inFlight = new Set<Promise<void>>();
  const totals = { written: 0, skippedExisting: 0 };
  let done = 0;
  let rowCount = 0;
  let batch: NewDevice[] = [];

  const flush = async () => {
    if (batch.length === 0) return;
    const devices = batch;
    batch = [];
    const job = deps.registry.importDevices(devices).then((outcome) => {
      totals.written += outcome.written;
      totals.skippedExisting += outcome.skippedExisting;
      done += devices.length;
      options.onProgress?.(done);
    });
    const tracked = job.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  };

  for await (const { line, record } of rows) {
    rowCount++;
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
    batch.push({
      serialNumber,
      productKey,
      ...(deviceSecret ? { sealedSecret: sealSecret(deviceSecret, await sealingKeys(), serialNumber) } : {}),
    });
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  await Promise.all(inFlight);
  return { ...totals, rejected, rows: rowCount };
}
