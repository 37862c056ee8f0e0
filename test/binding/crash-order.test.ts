import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { DynamoDbBindingStore } from "#adapters/dynamodb-bindings.ts";
import { type BindingDeps, bindDevice } from "#core/binding/bind-device.ts";
import { listMyDevices } from "#core/binding/manage-bindings.ts";
import { BindingRefusedError } from "#core/binding/model.ts";
import { pollPhoneToken, registerPhoneToken } from "#core/binding/phone-token.ts";
import type { BindingStore } from "#core/binding/ports.ts";
import { reportToken } from "#core/binding/report-token.ts";
import { DependencyUnavailableError } from "#core/errors.ts";
import { silentLogger } from "#core/logger.ts";
import { ensureBindingTable } from "#local/binding-wiring.ts";
import { type LocalDynamo, startLocalDynamo } from "#local/dynamodb.ts";

const newToken = () => randomBytes(16).toString("hex").toUpperCase();
const user = () => ({ userId: randomUUID(), username: "u", operator: false });

/**
 * What a crash between two of a bind's writes leaves, and that the retry converges: the store is
 * the real one on dynalite, with one chosen write failing once (as a Lambda dying there would).
 */
describe("binding: write order and retries after a failure midway", () => {
  let dynamo: LocalDynamo;
  let store: DynamoDbBindingStore;

  before(async () => {
    dynamo = await startLocalDynamo({ port: 0, host: "127.0.0.1", tableName: "registry-unused" });
    await ensureBindingTable(dynamo.client, "bindings-crash");
    store = new DynamoDbBindingStore(dynamo.documentClient, "bindings-crash");
  });
  after(() => dynamo.close());

  /** The store with `method` failing the next `times` calls (after or instead of running). */
  function failing(method: keyof BindingStore, times = 1, afterRunning = false): BindingStore {
    let left = times;
    return new Proxy(store, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (name !== method || typeof value !== "function")
          return typeof value === "function" ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          if (left <= 0) return value.apply(target, args);
          left--;
          if (afterRunning) await value.apply(target, args);
          throw new DependencyUnavailableError("injected");
        };
      },
    });
  }

  const deps = (s: BindingStore, productKey: string): BindingDeps => ({
    store: s,
    logger: silentLogger,
    registry: {
      getDevice: async () => undefined,
      getProduct: async (key) =>
        key === productKey
          ? { productKey, binding: { ownership: "single-owner", tokenTtlSeconds: 120 } }
          : undefined,
    },
    config: { phoneTokenTtlSeconds: 120, maxFailedBinds: 3, failedBindWindowSeconds: 600 },
  });

  const device = () => ({ productKey: `pk-${randomUUID().slice(0, 6)}`, deviceName: "dev-1" });

  it("a crash after the token is used, before the binding: nobody else can take it; the user's retry binds", async () => {
    const d = device();
    const token = newToken();
    await reportToken(deps(store, d.productKey), { device: d, token });
    const me = user();
    await assert.rejects(
      bindDevice(deps(failing("putBinding"), d.productKey), { user: me, device: d, token }),
      DependencyUnavailableError,
    );
    assert.deepEqual(await store.listOwners(d), [], "no binding");
    await assert.rejects(
      bindDevice(deps(store, d.productKey), { user: user(), device: d, token }),
      BindingRefusedError,
    );
    const retried = await bindDevice(deps(store, d.productKey), { user: me, device: d, token });
    assert.equal(retried.created, true);
    assert.equal((await listMyDevices(deps(store, d.productKey), { user: me })).devices.length, 1);
  });

  it("a crash after the binding, before the audit record: the user sees the binding; the retry writes one record", async () => {
    const d = device();
    const token = newToken();
    await reportToken(deps(store, d.productKey), { device: d, token });
    const me = user();
    await assert.rejects(bindDevice(deps(failing("putAudit"), d.productKey), { user: me, device: d, token }));
    assert.deepEqual(
      (await listMyDevices(deps(store, d.productKey), { user: me })).devices.map((x) => x.deviceName),
      ["dev-1"],
    );
    const retried = await bindDevice(deps(store, d.productKey), { user: me, device: d, token });
    assert.equal(retried.created, false);
    await bindDevice(deps(store, d.productKey), { user: me, device: d, token });
    const audit = await store.listAudit(d);
    assert.equal(audit.length, 1, "retries write the same audit record");
  });

  it("path 3: a report whose bind failed midway is completed by the phone's poll", async () => {
    const d = device();
    const token = newToken();
    const me = user();
    assert.equal(
      (await registerPhoneToken(deps(store, d.productKey), { user: me, token })).status,
      "pending",
    );
    await assert.rejects(
      reportToken(deps(failing("putBinding"), d.productKey), { device: d, token }),
      DependencyUnavailableError,
    );
    const polled = await pollPhoneToken(deps(store, d.productKey), { user: me, token });
    assert.equal(polled.status, "bound");
    assert.equal((await store.listOwners(d))[0]?.userId, me.userId);
  });

  it("failures that are not the user's (a dependency) do not count against the failed-bind limit", async () => {
    const d = device();
    const me = user();
    for (let i = 0; i < 6; i++) {
      await assert.rejects(
        bindDevice(deps(failing("useToken", 1), d.productKey), { user: me, device: d, token: newToken() }),
        DependencyUnavailableError,
      );
    }
    await assert.rejects(
      bindDevice(deps(store, d.productKey), { user: me, device: d, token: newToken() }),
      BindingRefusedError,
    );
  });
});
