import { createHash } from "node:crypto";
import type { TableDesign } from "./table-design.ts";

/**
 * The registry's single-table design, shared by the CDK construct and the local stack so both
 * create the same table.
 *
 * | item     | pk                      | sk      | gsi1pk                         | gsi1sk         |
 * |----------|-------------------------|---------|--------------------------------|----------------|
 * | product  | PRODUCT#{productKey}    | PRODUCT | PRODUCTS                       | {productKey}   |
 * | device   | DEVICE#{serialNumber}   | DEVICE  | PRODUCT#{productKey}#{shard}   | {serialNumber} |
 * | nonce    | NONCE#{scope}#{nonce}   | NONCE   | -                              | -              |
 *
 * A device's gsi1pk carries a shard (`00`..`15`, {@link deviceShard}): one product's devices are
 * spread over {@link DEVICE_SHARDS} index partitions instead of one hot key. Rows written before
 * sharding carry `PRODUCT#{productKey}` (no shard); readers read that key too, and
 * `onramp registry migrate` moves them (see ARCHITECTURE.md, Registry table).
 *
 * `expiresAt` (epoch seconds) is the TTL attribute; readers also compare it, since DynamoDB
 * deletes expired items late and dynalite never does.
 */
export const registryTable = {
  partitionKey: "pk",
  sortKey: "sk",
  gsi1: { name: "gsi1", partitionKey: "gsi1pk", sortKey: "gsi1sk" },
  ttlAttribute: "expiresAt",
} as const satisfies TableDesign;

/**
 * Index partitions per product. Numbers (ARCHITECTURE.md): one partition takes at most 1,000 write
 * units/s, and a GSI that cannot keep up throttles the base table's writes. Wanted per product: a
 * 1,000 rows/s import plus a 1,000 vends/s roll-out (3 device writes each, every one copied to the
 * ALL-projection index): ~4,000 index writes/s. 16 shards put 250/s on each key, a quarter of a
 * partition's ceiling; 8 would run at half of it with no room for items over 1 KB. Listing reads
 * 16 (+1 legacy) keys per page. Changing it re-shards: bump it only with a migration.
 */
export const DEVICE_SHARDS = 16;

/** A serial's shard: a stable hash (first 4 bytes of SHA-256) modulo {@link DEVICE_SHARDS}. */
export function deviceShard(serialNumber: string): number {
  return createHash("sha256").update(serialNumber).digest().readUInt32BE(0) % DEVICE_SHARDS;
}

/** The gsi1 partition keys of one product's devices: one per shard, and the pre-sharding key. */
export const productDevices = {
  shardKey: (productKey: string, shard: number) => `PRODUCT#${productKey}#${String(shard).padStart(2, "0")}`,
  forSerial: (productKey: string, serialNumber: string) =>
    productDevices.shardKey(productKey, deviceShard(serialNumber)),
  /** Where rows written before sharding sit (read until migrated). */
  legacyKey: (productKey: string) => `PRODUCT#${productKey}`,
} as const;

export const keys = {
  product: (productKey: string) => ({ pk: `PRODUCT#${productKey}`, sk: "PRODUCT" }),
  device: (serialNumber: string) => ({ pk: `DEVICE#${serialNumber}`, sk: "DEVICE" }),
  nonce: (scope: string, nonce: string) => ({ pk: `NONCE#${scope}#${nonce}`, sk: "NONCE" }),
} as const;
