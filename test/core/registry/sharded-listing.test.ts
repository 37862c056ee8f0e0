import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoDbRegistry } from "#adapters/dynamodb-registry.ts";
import { DEVICE_SHARDS, deviceShard, keys, productDevices, registryTable } from "#adapters/registry-table.ts";
import { ValidationError } from "#core/errors.ts";
import { type LocalDynamo, startLocalDynamo } from "#local/dynamodb.ts";

/**
 * The product listing over the sharded gsi1 keys, against dynalite: serial order and paging across
 * the 16 shard keys, rows written before sharding (the legacy `PRODUCT#{productKey}` key) read in
 * the same order, and `migrateDeviceKeys` moving them.
 */
describe("registry: sharded product listing and migration of pre-sharding rows", () => {
  let dynamo: LocalDynamo;
  let registry: DynamoDbRegistry;
  const table = "registry";

  before(async () => {
    dynamo = await startLocalDynamo({ port: 0, host: "127.0.0.1", tableName: table });
    registry = new DynamoDbRegistry(dynamo.documentClient, table);
    for (const productKey of ["sharded", "mixed", "other"]) {
      await registry.createProduct({
        productKey,
        name: productKey,
        authMode: "device-secret",
        allowServerKeys: false,
      } as Parameters<DynamoDbRegistry["createProduct"]>[0]);
    }
  });
  after(async () => {
    await dynamo.close();
  });

  /** Every page of the listing, with the page sizes seen. */
  async function listAll(productKey: string, limit: number) {
    const serials: string[] = [];
    const pages: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await registry.listDevices(productKey, { limit, ...(cursor ? { cursor } : {}) });
      pages.push(page.devices.length);
      serials.push(...page.devices.map((d) => d.serialNumber));
      cursor = page.cursor;
    } while (cursor);
    return { serials, pages };
  }

  it("hashes serials stably over 16 shards, spread evenly", () => {
    assert.equal(DEVICE_SHARDS, 16);
    assert.equal(deviceShard("SN-0001"), deviceShard("SN-0001"));
    const counts = new Array<number>(DEVICE_SHARDS).fill(0);
    for (let i = 0; i < 16_000; i++) counts[deviceShard(`SN-${String(i).padStart(7, "0")}`)]!++;
    // 1,000 expected per shard; a fair hash stays well within ±15 %.
    assert.ok(Math.min(...counts) > 850 && Math.max(...counts) < 1150, `per shard: ${counts.join(",")}`);
    assert.equal(
      productDevices.forSerial("p1", "SN-0001"),
      `PRODUCT#p1#${String(deviceShard("SN-0001")).padStart(2, "0")}`,
    );
  });

  it("writes imported devices under their shard key and lists them in serial order, page by page", async () => {
    const serials = Array.from({ length: 237 }, (_, i) => `SH-${String((i * 7919) % 1000).padStart(4, "0")}`);
    await registry.importDevices(serials.map((serialNumber) => ({ serialNumber, productKey: "sharded" })));
    await registry.importDevices([{ serialNumber: "OTHER-1", productKey: "other" }]);

    const used = new Set<string>();
    for (let shard = 0; shard < DEVICE_SHARDS; shard++) {
      const { Items = [] } = await dynamo.documentClient.send(
        new QueryCommand({
          TableName: table,
          IndexName: registryTable.gsi1.name,
          KeyConditionExpression: "gsi1pk = :p",
          ExpressionAttributeValues: { ":p": productDevices.shardKey("sharded", shard) },
        }),
      );
      for (const item of Items) {
        assert.equal(deviceShard(String(item.serialNumber)), shard, "each row sits under its serial's shard");
        used.add(String(item.gsi1pk));
      }
    }
    assert.equal(used.size, DEVICE_SHARDS, "237 devices use all 16 keys");

    const sorted = [...serials].sort();
    for (const limit of [7, 100, 1000]) {
      const { serials: listed, pages } = await listAll("sharded", limit);
      assert.deepEqual(listed, sorted, `limit ${limit}: every device once, in serial order`);
      assert.ok(
        pages.slice(0, -1).every((n) => n === limit),
        `limit ${limit}: full pages until the last (${pages.join(",")})`,
      );
    }
    assert.deepEqual(
      (await registry.listDevices("other")).devices.map((d) => d.serialNumber),
      ["OTHER-1"],
      "another product's devices are not listed",
    );
  });

  it("reads rows written before sharding with the sharded ones, accepts an old cursor, and migrates them", async () => {
    const legacy = ["MX-0003", "MX-0010", "MX-0011", "MX-0042", "MX-0100"];
    for (const serialNumber of legacy) {
      // A row as the registry wrote it before sharding: gsi1pk without a shard.
      await dynamo.documentClient.send(
        new PutCommand({
          TableName: table,
          Item: {
            ...keys.device(serialNumber),
            gsi1pk: productDevices.legacyKey("mixed"),
            gsi1sk: serialNumber,
            serialNumber,
            productKey: "mixed",
            status: "registered",
            version: 1,
          },
        }),
      );
    }
    const fresh = ["MX-0001", "MX-0005", "MX-0011b", "MX-0050", "MX-0099", "MX-0200"];
    await registry.importDevices(
      [...fresh, "MX-0042"].map((serialNumber) => ({ serialNumber, productKey: "mixed" })),
    );
    const expected = [...legacy, ...fresh].sort();
    assert.deepEqual((await listAll("mixed", 1)).serials, expected, "one ordered listing over both kinds");

    // A cursor printed before sharding was DynamoDB's LastEvaluatedKey, base64url JSON.
    const oldCursor = Buffer.from(
      JSON.stringify({ gsi1pk: "PRODUCT#mixed", gsi1sk: "MX-0010", pk: "DEVICE#MX-0010", sk: "DEVICE" }),
    ).toString("base64url");
    const afterOld = await registry.listDevices("mixed", { limit: 2, cursor: oldCursor });
    assert.deepEqual(
      afterOld.devices.map((d) => d.serialNumber),
      ["MX-0011", "MX-0011b"],
    );
    await assert.rejects(registry.listDevices("mixed", { cursor: "not-a-cursor" }), ValidationError);
    await assert.rejects(registry.listDevices("mixed", { limit: 0 }), ValidationError);

    const moved = await registry.migrateDeviceKeys("mixed");
    assert.deepEqual(moved, { moved: legacy.length, skipped: 0 });
    assert.deepEqual(await registry.migrateDeviceKeys("mixed"), { moved: 0, skipped: 0 }, "idempotent");
    const { Items = [] } = await dynamo.documentClient.send(
      new QueryCommand({
        TableName: table,
        IndexName: registryTable.gsi1.name,
        KeyConditionExpression: "gsi1pk = :p",
        ExpressionAttributeValues: { ":p": productDevices.legacyKey("mixed") },
      }),
    );
    assert.equal(Items.length, 0, "nothing left under the pre-sharding key");
    for (const serialNumber of legacy) {
      const device = await registry.getDevice(serialNumber);
      assert.equal(device?.status, "registered", "migration changes only the index key");
    }
    assert.deepEqual((await listAll("mixed", 4)).serials, expected, "the same listing after migration");
  });
});
