import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { keys } from "#adapters/registry-table.ts";
import { startExpiredItemSweeper } from "#local/expired-item-sweeper.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

describe("local stack: expired items are swept (dynalite has no TTL)", () => {
  let stack: Stack;
  let dynamo: DynamoDBDocumentClient;
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const nonceKey = (n: string) => keys.nonce("sweep/SWEEP-1", n);
  const putNonce = (n: string, expiresAt: number) =>
    dynamo.send(
      new PutCommand({
        TableName: stack.endpoints.tableName,
        Item: { ...nonceKey(n), expiresAt, expiresAtMs: expiresAt * 1000 },
      }),
    );
  const exists = async (key: Record<string, string>) =>
    (await dynamo.send(new GetCommand({ TableName: stack.endpoints.tableName, Key: key }))).Item !==
    undefined;

  before(async () => {
    stack = await startTestStack(); // its own sweeper runs every minute: not during these tests
    dynamo = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: stack.endpoints.dynamodb,
        region: stack.endpoints.region,
        credentials: stack.credentials,
      }),
    );
    await seedProduct(stack.services, { productKey: "sweep", name: "Sweep" }, ["SWEEP-1"]);
  });
  after(async () => {
    dynamo?.destroy();
    await stack?.stop();
  });

  it("one pass deletes past items, keeps future ones and items without expiresAt", async () => {
    const sweeper = startExpiredItemSweeper({
      client: dynamo,
      tableName: stack.endpoints.tableName,
      intervalMs: 3_600_000, // only the explicit pass below
    });
    try {
      for (let i = 0; i < 30; i++) await putNonce(`old-${i}`, nowSeconds() - 60 - i);
      await putNonce("future", nowSeconds() + 3600);
      assert.equal(await sweeper.sweepOnce(), 30);
      for (let i = 0; i < 30; i++) assert.equal(await exists(nonceKey(`old-${i}`)), false, `old-${i}`);
      assert.equal(await exists(nonceKey("future")), true);
      assert.equal(await exists(keys.device("SWEEP-1")), true, "devices have no expiresAt");
      assert.equal(await exists(keys.product("sweep")), true);
    } finally {
      await sweeper.stop();
    }
  });

  it("runs on its own in the local stack, every interval", async () => {
    const fast = await startTestStack({ sweepIntervalMs: 50 });
    const client = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: fast.endpoints.dynamodb,
        region: fast.endpoints.region,
        credentials: fast.credentials,
      }),
    );
    const table = fast.endpoints.tableName;
    const present = async (n: string) =>
      (await client.send(new GetCommand({ TableName: table, Key: nonceKey(n) }))).Item !== undefined;
    try {
      for (const [n, expiresAt] of [
        ["expired-by-timer", nowSeconds() - 1],
        ["kept", nowSeconds() + 3600],
      ] as const) {
        await client.send(
          new PutCommand({
            TableName: table,
            Item: { ...nonceKey(n), expiresAt, expiresAtMs: expiresAt * 1000 },
          }),
        );
      }
      // The stack's sweeper (every 50 ms here) removes it unasked; wait for that, not for a time.
      while (await present("expired-by-timer")) await sleep(20);
      assert.equal(await present("kept"), true);
    } finally {
      client.destroy();
      await fast.stop(); // stops the sweeper: the test process exits without waiting for a timer
    }
  });
});
