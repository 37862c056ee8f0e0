import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { MqttClient } from "mqtt";
import { LocalJwtIssuer } from "#local/jwt-issuer.ts";
import type { LocalStack } from "#local/stack.ts";
import { connectOrFail, endClient, nextMessage, subscribe } from "#test/local/mqtt/mqtt-device.ts";
import { recordingLogger } from "#test/local/mqtt/recording-logger.ts";
import {
  seedBindingProduct,
  seedProduct,
  startBindingStack,
  vendWithCsr,
} from "#test/support/local-stack.ts";
import { apiRequest, operatorUser, type PhoneUser, phoneUsers } from "#test/support/phone-users.ts";
import { connectAliyunDevice } from "#test/support/secret-login-mqtt.ts";

type Reply = { id: string; code: number; data?: object; message?: string };
type ApiAnswer = { status: number; body: Record<string, unknown>; headers: Headers };

const newToken = () => randomBytes(16).toString("hex").toUpperCase();
const TTL_SECONDS = 60;
const MAX_FAILED = 4;

/**
 * Device–user binding end to end on the local stack: real MQTT devices (secret-born Alibaba devices
 * on /sys/{pk}/{dn}/..., a certificate device on things/{thing}/sys/...) report tokens and resets
 * through the topic rules to the binding-report handler; phones call the phone API over HTTP with
 * ID tokens from the local JWT issuer, verified by the local API gateway's authorizer. Time (token
 * expiry, failed-bind windows, JWT expiry) comes from an injected clock.
 */
describe("device-user binding on the local stack", () => {
  let stack: LocalStack;
  const logger = recordingLogger();
  let nowMs = Date.parse("2026-06-01T00:00:00Z");
  const clock = () => nowMs;
  const tokensUsed: string[] = [];
  const jwtsUsed: string[] = [];
  const clients: MqttClient[] = [];
  let single: Awaited<ReturnType<typeof seedProduct>>;
  let shared: Awaited<ReturnType<typeof seedProduct>>;
  let certificateProduct: Awaited<ReturnType<typeof seedProduct>>;

  const users = {
    ...phoneUsers(["alice", "bob", "carol", "dave", "erin", "frank", "mallory"]),
    operator: operatorUser(),
  };

  before(async () => {
    stack = await startBindingStack({
      logger,
      binding: { clock, config: { maxFailedBinds: MAX_FAILED, failedBindWindowSeconds: 600 } },
    });
    single = await seedBindingProduct(
      stack.services,
      {
        productKey: "a1Single",
        name: "Single-owner lamp",
        ownership: "single-owner",
        tokenTtlSeconds: TTL_SECONDS,
      },
      ["s-01", "s-02", "s-03", "s-04", "s-05", "s-06"],
    );
    shared = await seedBindingProduct(
      stack.services,
      { productKey: "a1Shared", name: "Shared plug", ownership: "shared", tokenTtlSeconds: TTL_SECONDS },
      ["p-01", "p-02", "p-03", "p-04", "p-05"],
    );
    certificateProduct = await seedProduct(stack.services, { productKey: "cert-prod", name: "Cert" }, [
      "CERT-0001",
    ]);
  });

  after(async () => {
    await Promise.all(clients.map((c) => endClient(c)));
    await stack?.close();
  });

  const jwt = async (user: PhoneUser, atMs = nowMs) => {
    const token = await stack.binding.issuer.issueIdToken(user, { nowMs: atMs });
    jwtsUsed.push(token);
    return token;
  };

  async function api(
    method: string,
    path: string,
    auth: string | undefined,
    body?: unknown,
  ): Promise<ApiAnswer> {
    const { status, headers, text } = await apiRequest(stack.endpoints.api, method, path, {
      auth,
      ...(body === undefined ? {} : { body: JSON.stringify(body), contentType: "application/json" }),
    });
    return { status, body: text ? JSON.parse(text) : {}, headers };
  }

  const bind = async (user: keyof typeof users, productKey: string, deviceName: string, token: string) =>
    api("POST", "/v1/bindings", await jwt(users[user]), { productKey, deviceName, token });

  /** A secret-born device connected over MQTT, listening on its reply topics. */
  async function aliyunDevice(product: typeof single, productKey: string, deviceName: string) {
    const client = await connectAliyunDevice(stack, {
      productKey,
      deviceName,
      deviceSecret: product.secretFor(deviceName),
    });
    clients.push(client);
    const base = `/sys/${productKey}/${deviceName}/thing`;
    assert.deepEqual(await subscribe(client, `${base}/awss/enrollee/match_reply`), [1]);
    assert.deepEqual(await subscribe(client, `${base}/reset_reply`), [1]);
    return { client, matchTopic: `${base}/awss/enrollee/match`, resetTopic: `${base}/reset` };
  }

  let messageId = 0;
  /** Publishes a request as the seeds' SDK does and waits for the answer with the same id. */
  async function ask(
    client: MqttClient,
    topic: string,
    method: string,
    params: object,
    id = String(++messageId),
  ) {
    const reply = nextMessage(client, `${topic}_reply`, 10_000);
    client.publish(topic, JSON.stringify({ id, version: "1.0", method, params }), { qos: 1 });
    const message = await reply;
    assert.ok(message, `an answer on ${topic}_reply`);
    return JSON.parse(message.payload) as Reply;
  }
  const report = (device: { client: MqttClient; matchTopic: string }, token: string, id?: string) => {
    tokensUsed.push(token);
    return ask(device.client, device.matchTopic, "thing.awss.enrollee.match", { token }, id);
  };
  const reset = (device: { client: MqttClient; resetTopic: string }) =>
    ask(device.client, device.resetTopic, "thing.reset", {});

  it("paths 1/2: the device reports a token, the phone binds with it; a retry is the same binding; the token is one-time", async () => {
    const device = await aliyunDevice(single, "a1Single", "s-01");
    const token = newToken();
    assert.deepEqual(await report(device, token, "7"), { id: "7", code: 200, data: {} });
    const first = await bind("alice", "a1Single", "s-01", token);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const binding = first.body.binding as Record<string, string>;
    assert.deepEqual(
      { ...binding, boundAt: undefined },
      { productKey: "a1Single", deviceName: "s-01", userId: users.alice.userId, boundAt: undefined },
    );
    nowMs += 1000;
    const again = await bind("alice", "a1Single", "s-01", token);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.binding, binding, "same binding, same boundAt");
    const other = await bind("bob", "a1Single", "s-01", token);
    assert.equal(other.status, 403);
    assert.equal((other.body.error as { code: string }).code, "BINDING_REFUSED");
    const mine = await api("GET", "/v1/devices", await jwt(users.alice));
    assert.equal(mine.status, 200);
    assert.deepEqual(mine.body.devices, [
      { productKey: "a1Single", deviceName: "s-01", boundAt: binding.boundAt },
    ]);
    const audit = await stack.binding.store.listAudit({ productKey: "a1Single", deviceName: "s-01" });
    assert.deepEqual(
      audit.map((a) => [a.action, a.userId, a.via]),
      [["bind", users.alice.userId, "device-token"]],
      "one audit record although the bind was retried",
    );
  });

  it("a replayed report is answered the same and stores one token; a report with a bad token gets 400", async () => {
    const device = await aliyunDevice(shared, "a1Shared", "p-01");
    const token = newToken();
    assert.equal((await report(device, token, "1")).code, 200);
    assert.equal((await report(device, token, "1")).code, 200, "the device's retry after 30 s");
    const hashes = await stack.binding.store.listDeviceTokens({ productKey: "a1Shared", deviceName: "p-01" });
    assert.equal(hashes.length, 1);
    const bad = await ask(
      device.client,
      device.matchTopic,
      "thing.awss.enrollee.match",
      { token: "abc" },
      "9",
    );
    assert.equal(bad.code, 400);
    assert.equal(bad.id, "9");
    assert.match(bad.message ?? "", /token/);
  });

  it("two phones racing for one token: exactly one binds", async () => {
    const device = await aliyunDevice(shared, "a1Shared", "p-02");
    const token = newToken();
    assert.equal((await report(device, token)).code, 200);
    const answers = await Promise.all([
      bind("alice", "a1Shared", "p-02", token),
      bind("bob", "a1Shared", "p-02", token),
      bind("carol", "a1Shared", "p-02", token),
    ]);
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 403, 403]);
    const owners = await api("GET", "/v1/products/a1Shared/devices/p-02/owners", await jwt(users.operator));
    assert.equal((owners.body.owners as unknown[]).length, 1);
  });

  it("an expired token binds nothing (injected clock)", async () => {
    const device = await aliyunDevice(shared, "a1Shared", "p-03");
    const token = newToken();
    assert.equal((await report(device, token)).code, 200);
    nowMs += TTL_SECONDS * 1000;
    const late = await bind("dave", "a1Shared", "p-03", token);
    assert.equal(late.status, 403);
    assert.equal((late.body.error as { code: string }).code, "BINDING_REFUSED");
  });

  it("another device's token: refused for the phone, and refused when a second device reports it", async () => {
    const a = await aliyunDevice(single, "a1Single", "s-02");
    const b = await aliyunDevice(single, "a1Single", "s-03");
    const token = newToken();
    assert.equal((await report(a, token)).code, 200);
    const wrong = await bind("dave", "a1Single", "s-03", token);
    assert.equal(wrong.status, 403);
    assert.equal((wrong.body.error as { code: string }).code, "BINDING_REFUSED");
    const stolen = await report(b, token);
    assert.equal(stolen.code, 403);
    assert.equal(
      (await bind("dave", "a1Single", "s-02", token)).status,
      201,
      "the right device's bind still works",
    );
  });

  it("single-owner: a second user gets DEVICE_ALREADY_BOUND until the owner unbinds; racing users with two tokens: one owner", async () => {
    const device = await aliyunDevice(single, "a1Single", "s-04");
    const t1 = newToken();
    const t2 = newToken();
    await report(device, t1);
    await report(device, t2);
    assert.equal((await bind("alice", "a1Single", "s-04", t1)).status, 201);
    const taken = await bind("bob", "a1Single", "s-04", t2);
    assert.equal(taken.status, 409);
    assert.equal((taken.body.error as { code: string }).code, "DEVICE_ALREADY_BOUND");
    assert.equal((await api("DELETE", "/v1/bindings/a1Single/s-04", await jwt(users.alice))).status, 204);
    assert.equal(
      (await api("DELETE", "/v1/bindings/a1Single/s-04", await jwt(users.alice))).status,
      204,
      "idempotent",
    );
    assert.equal(
      (await bind("alice", "a1Single", "s-04", t1)).status,
      403,
      "an unbind retires the tokens the user used: no re-bind by replaying one",
    );
    assert.equal(
      (await bind("bob", "a1Single", "s-04", t2)).status,
      201,
      "the refused bind released the token",
    );

    const racer = await aliyunDevice(single, "a1Single", "s-05");
    const [ta, tb] = [newToken(), newToken()];
    await report(racer, ta);
    await report(racer, tb);
    const answers = await Promise.all([
      bind("alice", "a1Single", "s-05", ta),
      bind("erin", "a1Single", "s-05", tb),
    ]);
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409]);
    const owners = await api("GET", "/v1/products/a1Single/devices/s-05/owners", await jwt(users.operator));
    assert.equal((owners.body.owners as unknown[]).length, 1);
  });

  it("shared: every user with a token binds; unbind removes only mine; a device reset removes all bindings and tokens", async () => {
    const device = await aliyunDevice(shared, "a1Shared", "p-04");
    const [ta, tb, unused] = [newToken(), newToken(), newToken()];
    await report(device, ta);
    await report(device, tb);
    await report(device, unused);
    assert.equal((await bind("alice", "a1Shared", "p-04", ta)).status, 201);
    assert.equal((await bind("bob", "a1Shared", "p-04", tb)).status, 201);
    const ownersOf = async () =>
      (
        (await api("GET", "/v1/products/a1Shared/devices/p-04/owners", await jwt(users.operator))).body
          .owners as {
          userId: string;
        }[]
      ).map((o) => o.userId);
    assert.deepEqual((await ownersOf()).sort(), [users.alice.userId, users.bob.userId].sort());
    assert.equal((await api("DELETE", "/v1/bindings/a1Shared/p-04", await jwt(users.bob))).status, 204);
    assert.deepEqual(await ownersOf(), [users.alice.userId]);
    assert.deepEqual(await reset(device), { id: String(messageId), code: 200, data: {} });
    assert.deepEqual(await ownersOf(), []);
    assert.equal(
      (await bind("carol", "a1Shared", "p-04", unused)).status,
      403,
      "the reset removed the unused token",
    );
    assert.equal(
      (await bind("alice", "a1Shared", "p-04", ta)).status,
      403,
      "and the used one: no re-bind by replay",
    );
    const audit = await stack.binding.store.listAudit({ productKey: "a1Shared", deviceName: "p-04" });
    assert.deepEqual(
      audit.map((a) => a.action).sort(),
      ["bind", "bind", "reset", "unbind"],
      "bind, bind, unbind, reset (alice's binding)",
    );
  });

  it("path 3: a phone-made token binds whether the device's report comes after or before the registration", async () => {
    const device = await aliyunDevice(shared, "a1Shared", "p-05");
    const later = newToken();
    tokensUsed.push(later);
    const registered = await api("POST", "/v1/binding-tokens", await jwt(users.carol), { token: later });
    assert.equal(registered.status, 202);
    assert.equal(registered.body.status, "pending");
    const pending = await api("POST", "/v1/binding-tokens/status", await jwt(users.carol), { token: later });
    assert.deepEqual(pending.body.status, "pending");
    const notMine = await api("POST", "/v1/binding-tokens/status", await jwt(users.frank), { token: later });
    assert.equal(notMine.status, 403);
    assert.equal((await report(device, later)).code, 200);
    const bound = await api("POST", "/v1/binding-tokens/status", await jwt(users.carol), { token: later });
    assert.equal(bound.status, 200);
    assert.equal(bound.body.status, "bound");
    assert.equal((bound.body.binding as { userId: string }).userId, users.carol.userId);

    const first = newToken();
    assert.equal((await report(device, first)).code, 200);
    const direct = await api("POST", "/v1/binding-tokens", await jwt(users.alice), { token: first });
    assert.equal(direct.status, 201);
    assert.equal(direct.body.status, "bound");
    assert.equal((direct.body.binding as { deviceName: string }).deviceName, "p-05");
    const stolen = await bind("frank", "a1Shared", "p-05", later);
    assert.equal(stolen.status, 403, "a phone-made token binds only its phone's user");
  });

  it("a certificate device reports in its thing's topic space; the productKey comes from the registry", async () => {
    const { keyPem, certificatePem } = await vendWithCsr(stack.endpoints.api, {
      productKey: "cert-prod",
      serialNumber: "CERT-0001",
      secret: certificateProduct.secretFor("CERT-0001"),
    });
    const client = await connectOrFail({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId: "CERT-0001",
      credentials: { keyPem, certPem: certificatePem },
    });
    clients.push(client);
    const topic = "things/CERT-0001/sys/thing/awss/enrollee/match";
    assert.deepEqual(await subscribe(client, `${topic}_reply`), [1]);
    const token = newToken();
    tokensUsed.push(token);
    const reply = await ask(client, topic, "thing.awss.enrollee.match", { token }, "42");
    assert.deepEqual(reply, { id: "42", code: 200, data: {} });
    assert.equal((await bind("alice", "cert-prod", "CERT-0001", token)).status, 201);
    assert.deepEqual(await subscribe(client, "things/CERT-0001/sys/thing/reset_reply"), [1]);
    assert.equal((await ask(client, "things/CERT-0001/sys/thing/reset", "thing.reset", {})).code, 200);
    const owners = await api(
      "GET",
      "/v1/products/cert-prod/devices/CERT-0001/owners",
      await jwt(users.operator),
    );
    assert.deepEqual(owners.body.owners, []);
  });

  it("failed binds are limited per user: 429 with Retry-After, counted again in the next window", async () => {
    for (let i = 0; i < MAX_FAILED; i++) {
      assert.equal((await bind("mallory", "a1Single", "s-06", newToken())).status, 403);
    }
    const limited = await bind("mallory", "a1Single", "s-06", newToken());
    assert.equal(limited.status, 429);
    assert.equal((limited.body.error as { code: string }).code, "TOO_MANY_FAILED_BINDS");
    const retryAfter = Number(limited.headers.get("retry-after"));
    assert.ok(retryAfter >= 1 && retryAfter <= 600, `Retry-After ${retryAfter}`);
    nowMs += retryAfter * 1000;
    assert.equal((await bind("mallory", "a1Single", "s-06", newToken())).status, 403, "a new window");
  });

  it("the phone API's authorizer: missing, forged and expired JWTs get 401; operator routes 403 for others", async () => {
    const path = "/v1/devices";
    const unauthorized = { status: 401, body: { error: { code: "UNAUTHORIZED", message: "Unauthorized" } } };
    const strip = (a: ApiAnswer) => ({ status: a.status, body: a.body });
    assert.deepEqual(strip(await api("GET", path, undefined)), unauthorized);
    const forger = await LocalJwtIssuer.create({ issuer: stack.endpoints.jwtIssuer });
    const forged = await forger.issueIdToken(users.alice, { nowMs });
    jwtsUsed.push(forged);
    assert.deepEqual(strip(await api("GET", path, forged)), unauthorized);
    const expired = await jwt(users.alice, nowMs - 2 * 3600_000);
    assert.deepEqual(strip(await api("GET", path, expired)), unauthorized);
    const [header, payload] = (await jwt(users.alice)).split(".");
    assert.deepEqual(strip(await api("GET", path, `${header}.${payload}.`)), unauthorized, "unsigned");
    const owners = await api("GET", "/v1/products/a1Single/devices/s-01/owners", await jwt(users.bob));
    assert.equal(owners.status, 403);
    assert.equal((owners.body.error as { code: string }).code, "FORBIDDEN");
    const asOperator = await api(
      "GET",
      "/v1/products/a1Single/devices/s-01/owners",
      await jwt(users.operator),
    );
    assert.deepEqual(asOperator.body.owners, [
      { userId: users.alice.userId, boundAt: (asOperator.body.owners as { boundAt: string }[])[0]?.boundAt },
    ]);
    const jwks = await fetch(new URL("/.well-known/jwks.json", stack.endpoints.jwtIssuer));
    const keys = ((await jwks.json()) as { keys: Record<string, unknown>[] }).keys;
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.d, undefined, "public key only");
    const badBody = await api("POST", "/v1/bindings", await jwt(users.alice), {
      productKey: "a1Single",
      deviceName: "s-01",
    });
    assert.equal(badBody.status, 400);
    assert.match(JSON.stringify(badBody.body), /token/);
  });

  it("GET /v1/devices pages with nextToken; a token it did not return is a 400 naming it", async () => {
    const auth = await jwt(users.alice);
    const seen: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const query = `?limit=1${nextToken ? `&nextToken=${encodeURIComponent(nextToken)}` : ""}`;
      const page = await api("GET", `/v1/devices${query}`, auth);
      assert.equal(page.status, 200);
      for (const d of page.body.devices as { productKey: string; deviceName: string }[]) {
        seen.push(`${d.productKey}/${d.deviceName}`);
      }
      nextToken = page.body.nextToken as string | undefined;
      pages++;
    } while (nextToken && pages < 20);
    const all = await api("GET", "/v1/devices", auth);
    const expected = (all.body.devices as { productKey: string; deviceName: string }[]).map(
      (d) => `${d.productKey}/${d.deviceName}`,
    );
    assert.ok(expected.length >= 2, "alice owns several devices by now");
    assert.deepEqual(seen, expected);
    const forged = Buffer.from(
      JSON.stringify({ pk: "x", sk: "y", gsi1pk: `USER#${users.bob.userId}`, gsi1sk: "z" }),
    );
    const bad = await api("GET", `/v1/devices?nextToken=${forged.toString("base64url")}`, auth);
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /nextToken/);
    const badLimit = await api("GET", "/v1/devices?limit=0", auth);
    assert.equal(badLimit.status, 400);
    assert.match(JSON.stringify(badLimit.body), /limit/);
  });

  it("no token or JWT in any log line", () => {
    assert.ok(logger.entries.length > 20, "the flows logged");
    const text = JSON.stringify(logger.entries);
    for (const token of tokensUsed) {
      assert.equal(text.includes(token), false, "a binding token was logged");
      assert.equal(text.toLowerCase().includes(token.toLowerCase()), false);
    }
    for (const token of jwtsUsed)
      assert.equal(text.includes(token.split(".")[2]!), false, "a JWT was logged");
    assert.equal(/eyJ[A-Za-z0-9_-]{10,}/.test(text), false);
  });
});
