import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { DynamoDbBindingStore } from "#adapters/dynamodb-bindings.ts";
import type { BindingDeps } from "#core/binding/bind-device.ts";
import { bindDevice } from "#core/binding/bind-device.ts";
import { BindingRefusedError, DeviceAlreadyBoundError } from "#core/binding/model.ts";
import { reportToken } from "#core/binding/report-token.ts";
import { silentLogger } from "#core/logger.ts";
import type { BindingOwnership } from "#core/registry/model.ts";
import { ensureBindingTable } from "#local/binding-wiring.ts";
import { type LocalDynamo, startLocalDynamo } from "#local/dynamodb.ts";

/**
 * The token store's one-time guarantee under concurrency, against dynalite (the same conditional
 * writes DynamoDB runs): whatever the token, device and users, 50 parallel binds of one token make
 * exactly one binding and 49 refusals; on a single-owner device, 50 users racing with 50 valid
 * tokens end with exactly one owner (the others DEVICE_ALREADY_BOUND, their tokens released).
 */
describe("binding token store (property, dynalite)", () => {
  let dynamo: LocalDynamo;
  let store: DynamoDbBindingStore;
  const products = new Map<string, BindingOwnership>();

  before(async () => {
    dynamo = await startLocalDynamo({ port: 0, host: "127.0.0.1", tableName: "registry-unused" });
    await ensureBindingTable(dynamo.client, "bindings-property");
    store = new DynamoDbBindingStore(dynamo.documentClient, "bindings-property");
  });
  after(() => dynamo.close());

  const deps = (): BindingDeps => ({
    store,
    logger: silentLogger,
    registry: {
      getDevice: async () => undefined,
      getProduct: async (productKey) => {
        const ownership = products.get(productKey);
        return ownership ? { productKey, binding: { ownership, tokenTtlSeconds: 120 } } : undefined;
      },
    },
    // 50 tokens reported by one device: over the default report limit, which is not under test here.
    config: {
      phoneTokenTtlSeconds: 120,
      maxFailedBinds: 10,
      failedBindWindowSeconds: 600,
      maxTokenReports: 100,
    },
  });

  const token = fc
    .uint8Array({ minLength: 16, maxLength: 16 })
    .map((b) => Buffer.from(b).toString("hex").toUpperCase());
  const deviceName = fc.stringMatching(/^[A-Za-z0-9:_-]{1,40}$/);
  const ownership = fc.constantFrom<BindingOwnership>("single-owner", "shared");

  it("50 parallel binds of one token: exactly one binding", async () => {
    await fc.assert(
      fc.asyncProperty(token, deviceName, ownership, async (value, name, mode) => {
        const productKey = `pk-${randomUUID().slice(0, 8)}`;
        products.set(productKey, mode);
        const device = { productKey, deviceName: name };
        assert.equal(await reportToken(deps(), { device, token: value }), "recorded");
        const users = Array.from({ length: 50 }, () => ({
          userId: randomUUID(),
          username: "u",
          operator: false,
        }));
        const results = await Promise.allSettled(
          users.map((user) => bindDevice(deps(), { user, device, token: value })),
        );
        const won = results.filter((r) => r.status === "fulfilled");
        const refused = results.filter(
          (r) => r.status === "rejected" && r.reason instanceof BindingRefusedError,
        );
        assert.equal(won.length, 1);
        assert.equal(refused.length, 49);
        const owners = await store.listOwners(device);
        assert.equal(owners.length, 1);
        assert.equal(
          owners[0]?.userId,
          (won[0] as PromiseFulfilledResult<{ binding: { userId: string } }>).value.binding.userId,
        );
      }),
      { numRuns: 6 },
    );
  });

  it("single-owner: 50 users racing with 50 valid tokens end with one owner", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(token, { minLength: 50, maxLength: 50 }),
        deviceName,
        async (tokens, name) => {
          const productKey = `pk-${randomUUID().slice(0, 8)}`;
          products.set(productKey, "single-owner");
          const device = { productKey, deviceName: name };
          for (const value of tokens) await reportToken(deps(), { device, token: value });
          const users = tokens.map(() => ({ userId: randomUUID(), username: "u", operator: false }));
          const results = await Promise.allSettled(
            users.map((user, i) => bindDevice(deps(), { user, device, token: tokens[i]! })),
          );
          assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
          assert.equal(
            results.filter((r) => r.status === "rejected" && r.reason instanceof DeviceAlreadyBoundError)
              .length,
            49,
          );
          assert.equal((await store.listOwners(device)).length, 1);
          // A refused bind released its token: the loser can bind once the owner unbinds.
          const winner = users[results.findIndex((r) => r.status === "fulfilled")]!;
          const loser = results.findIndex((r) => r.status === "rejected");
          await store.deleteUserBinding(device, winner.userId);
          const retried = await bindDevice(deps(), { user: users[loser]!, device, token: tokens[loser]! });
          assert.equal(retried.created, true);
        },
      ),
      { numRuns: 3 },
    );
  });
});
