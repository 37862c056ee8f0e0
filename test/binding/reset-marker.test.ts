import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { DynamoDbBindingStore } from "#adapters/dynamodb-bindings.ts";
import { type BindingDeps, bindDevice } from "#core/binding/bind-device.ts";
import { BindingRefusedError, hashToken } from "#core/binding/model.ts";
import { pollPhoneToken, registerPhoneToken } from "#core/binding/phone-token.ts";
import type { BindingStore } from "#core/binding/ports.ts";
import { reportToken, resetDevice } from "#core/binding/report-token.ts";
import { DependencyUnavailableError } from "#core/errors.ts";
import { silentLogger } from "#core/logger.ts";
import { ensureBindingTable } from "#local/binding-wiring.ts";
import { type LocalDynamo, startLocalDynamo } from "#local/dynamodb.ts";

const newToken = () => randomBytes(16).toString("hex").toUpperCase();
const user = () => ({ userId: randomUUID(), username: "u", operator: false });

/**
 * A reset finds the device's tokens through gsi1, eventually consistent on AWS (dynalite's index
 * is not): here the store's `listDeviceTokens` answers as a lagging index would, without the
 * token reported just before the reset, so the token's item survives the reset. The reset marker
 * must still refuse it, on both bind paths, and tokens reported after the reset must bind.
 */
describe("binding: a device reset refuses tokens its index read missed", () => {
  let dynamo: LocalDynamo;
  let store: DynamoDbBindingStore;
  let clock = Date.UTC(2030, 0, 1);

  before(async () => {
    dynamo = await startLocalDynamo({ port: 0, host: "127.0.0.1", tableName: "registry-unused" });
    await ensureBindingTable(dynamo.client, "bindings-reset");
    store = new DynamoDbBindingStore(dynamo.documentClient, "bindings-reset");
  });
  after(() => dynamo.close());

  /** The store as a lagging index shows it: the device's token list comes back empty. */
  const laggingIndex = (): BindingStore =>
    new Proxy(store, {
      get(target, name, receiver) {
        if (name === "listDeviceTokens") return async () => [];
        const value = Reflect.get(target, name, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });

  const deps = (s: BindingStore, productKey: string): BindingDeps => ({
    store: s,
    logger: silentLogger,
    clock: () => clock,
    registry: {
      getDevice: async () => undefined,
      getProduct: async (key) =>
        key === productKey
          ? { productKey, binding: { ownership: "single-owner", tokenTtlSeconds: 600 } }
          : undefined,
    },
  });

  const device = () => ({ productKey: `pk-${randomUUID().slice(0, 6)}`, deviceName: "dev-1" });

  it("device-token path: a token reported before the reset survives it but is refused; one reported after binds", async () => {
    const d = device();
    const before = newToken();
    await reportToken(deps(store, d.productKey), { device: d, token: before });
    clock += 1000;
    await resetDevice(deps(laggingIndex(), d.productKey), d);
    assert.ok(await store.getToken(hashToken(before)), "the lagging index kept the token's item");
    assert.equal(await store.getResetMarker(d), clock);

    const me = user();
    await assert.rejects(
      bindDevice(deps(store, d.productKey), { user: me, device: d, token: before }),
      BindingRefusedError,
    );
    assert.equal((await store.getToken(hashToken(before)))?.usedBy, undefined, "not used");
    assert.deepEqual(await store.listOwners(d), []);

    clock += 1000;
    const afterReset = newToken();
    await reportToken(deps(store, d.productKey), { device: d, token: afterReset });
    const bound = await bindDevice(deps(store, d.productKey), { user: me, device: d, token: afterReset });
    assert.equal(bound.binding.userId, me.userId);
    assert.deepEqual(
      (await store.listOwners(d)).map((o) => o.userId),
      [me.userId],
    );
  });

  it("a token reported in the reset's own millisecond is refused (reported after means strictly after)", async () => {
    const d = device();
    const same = newToken();
    await reportToken(deps(store, d.productKey), { device: d, token: same });
    await resetDevice(deps(laggingIndex(), d.productKey), d);
    await assert.rejects(
      bindDevice(deps(store, d.productKey), { user: user(), device: d, token: same }),
      BindingRefusedError,
    );
  });

  it("phone-token path: a surviving token is refused when the phone registers or polls it; a new one binds", async () => {
    const d = device();
    const old = newToken();
    await reportToken(deps(store, d.productKey), { device: d, token: old });
    clock += 1000;
    await resetDevice(deps(laggingIndex(), d.productKey), d);
    const phone = user();
    await assert.rejects(
      registerPhoneToken(deps(store, d.productKey), { user: phone, token: old }),
      BindingRefusedError,
    );
    await assert.rejects(
      pollPhoneToken(deps(store, d.productKey), { user: phone, token: old }),
      BindingRefusedError,
    );
    assert.deepEqual(await store.listOwners(d), []);

    // After the reset: the phone registers first, the device reports (and so binds) later.
    clock += 1000;
    const fresh = newToken();
    assert.equal(
      (await registerPhoneToken(deps(store, d.productKey), { user: phone, token: fresh })).status,
      "pending",
    );
    clock += 1000;
    assert.equal(
      await reportToken(deps(store, d.productKey), { device: d, token: fresh }),
      "matched-phone-token",
    );
    assert.equal(
      (await pollPhoneToken(deps(store, d.productKey), { user: phone, token: fresh })).status,
      "bound",
    );
    assert.deepEqual(
      (await store.listOwners(d)).map((o) => o.userId),
      [phone.userId],
    );
  });

  it("a reset that crashes after its marker leaves old tokens refused and the binding in place; its retry completes", async () => {
    const d = device();
    const [used, unused] = [newToken(), newToken()];
    await reportToken(deps(store, d.productKey), { device: d, token: used });
    await reportToken(deps(store, d.productKey), { device: d, token: unused });
    const owner = user();
    await bindDevice(deps(store, d.productKey), { user: owner, device: d, token: used });
    clock += 1000;
    const crashing = new Proxy(store, {
      get(target, name, receiver) {
        if (name === "listDeviceTokens")
          return async () => Promise.reject(new DependencyUnavailableError("injected"));
        const value = Reflect.get(target, name, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await assert.rejects(resetDevice(deps(crashing, d.productKey), d), DependencyUnavailableError);
    assert.deepEqual(
      (await store.listOwners(d)).map((o) => o.userId),
      [owner.userId],
      "the binding is still there",
    );
    await assert.rejects(
      bindDevice(deps(store, d.productKey), { user: user(), device: d, token: unused }),
      BindingRefusedError,
      "but the token of before the reset binds nothing",
    );
    clock += 1000;
    assert.deepEqual(await resetDevice(deps(store, d.productKey), d), {
      removedBindings: 1,
      removedTokens: 2,
    });
    assert.deepEqual(await store.listOwners(d), []);
  });

  it("the marker is only ever raised: a late, older reset does not lower it", async () => {
    const d = device();
    await store.raiseResetMarker(d, 2_000);
    await store.raiseResetMarker(d, 1_000);
    assert.equal(await store.getResetMarker(d), 2_000);
    await store.raiseResetMarker(d, 3_000);
    assert.equal(await store.getResetMarker(d), 3_000);
    assert.equal(await store.getResetMarker(device()), undefined, "never reset: no marker");
  });
});
