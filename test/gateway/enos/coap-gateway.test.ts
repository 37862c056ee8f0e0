// The EnOS CoAP gateway end to end on the local stack (npm start's wiring): a DTLS client
// (node-dtls-client) with seed 000's PSKs, CoAP with coap-packet, a real MQTT subscriber.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import mqtt from "mqtt";
import { disableDevice } from "#core/registry/manage-devices.ts";
import { buildEnosMqttCredentials } from "#credentials/enos-mqtt.ts";
import { enosPskKey } from "#credentials/enos-psk.ts";
import { type CoapsConnection, connectCoaps } from "#gateway/coap/coaps-client.ts";
import { ContentFormat } from "#gateway/coap/index.ts";
import type { DtlsSession } from "#gateway/dtls/index.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

describe("EnOS CoAP gateway on the local stack", () => {
  let stack: Stack;
  let pump: Awaited<ReturnType<typeof seedProduct>>;
  let meter: Awaited<ReturnType<typeof seedProduct>>;
  const sessions: DtlsSession[] = [];

  before(async () => {
    stack = await startTestStack();
    stack.coap.gateway.dtls.on("session", (s) => sessions.push(s));
    // One secret per device (derived from the product secret), no dynamic activation.
    pump = await seedProduct(
      stack.services,
      { productKey: "enosPump", name: "Pump", mqttAuth: { scheme: "enos", dynamicActivation: false } },
      ["pump-01", "pump-02", "pump-03"],
    );
    // One secret per product: devices activate with SecureMode 3 first.
    meter = await seedProduct(
      stack.services,
      {
        productKey: "enosMeter",
        name: "Meter",
        authMode: "product-secret",
        mqttAuth: { scheme: "enos", dynamicActivation: true },
      },
      ["meter-01", "meter-02"],
    );
    await disableDevice(stack.services, "pump-02", "stolen");
  });
  after(() => stack.stop());

  const connect = (identity: string, secret: string): Promise<CoapsConnection> =>
    connectCoaps({
      host: "127.0.0.1",
      port: stack.coap.port,
      identity,
      key: enosPskKey(secret),
      handshakeTimeoutMs: 5000,
      ackTimeoutMs: 500,
    });

  const refused = async (identity: string, secret: string) => {
    const count = sessions.length;
    await assert.rejects(connect(identity, secret));
    assert.equal(sessions.length, count, "no session");
  };

  it("SecureMode 2: the first login makes the thing and commits the registry; POSTs land on the MQTT endpoint", async () => {
    const secret = pump.secretFor("pump-01");
    const connection = await connect("enosPump,pump-01,2,60", secret);
    try {
      // The idle timeout is the identity's Lifetime.
      assert.equal((sessions.at(-1) as unknown as { idleTimeoutMs: number }).idleTimeoutMs, 60_000);
      const first = await connection.coap.request({
        method: "POST",
        path: "/topic/sys/enosPump/pump-01/thing/measurepoint/post",
        payload: JSON.stringify({ id: "1", params: { measurepoints: { flow: 1 } } }),
        contentFormat: ContentFormat.json,
      });
      assert.equal(first.code, "2.04");
      // recordFirstLogin runs beside the session: wait for the commit.
      for (
        let i = 0;
        i < 50 && (await stack.services.registry.getDevice("pump-01"))?.status !== "provisioned";
        i++
      )
        await new Promise((r) => setTimeout(r, 50));
      assert.equal((await stack.services.registry.getDevice("pump-01"))?.status, "provisioned");
      assert.equal((await stack.services.iot.describeThing("pump-01"))?.attributes.productKey, "enosPump");

      // A real MQTT subscriber: the same device logged in over MQTT, reading its own topics.
      const subscriber = await mqtt.connectAsync(stack.endpoints.mqtt, {
        ...buildEnosMqttCredentials({
          productKey: "enosPump",
          deviceKey: "pump-01",
          secret,
          timestamp: Date.now(),
        }),
        ca: stack.rootCaPem,
        servername: "localhost",
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      try {
        await subscriber.subscribeAsync("/sys/enosPump/pump-01/#");
        const received = new Promise<{ topic: string; payload: string }>((resolve) =>
          subscriber.once("message", (topic, payload) => resolve({ topic, payload: payload.toString() })),
        );
        const second = await connection.coap.request({
          method: "POST",
          path: "/topic/sys/enosPump/pump-01/thing/event/alarm/post",
          payload: JSON.stringify({ id: "2", params: { level: "high" } }),
        });
        assert.equal(second.code, "2.04");
        const message = await received;
        assert.equal(message.topic, "/sys/enosPump/pump-01/thing/event/alarm/post");
        assert.deepEqual(JSON.parse(message.payload), { id: "2", params: { level: "high" } });
      } finally {
        await subscriber.endAsync(true);
      }
    } finally {
      await connection.close();
    }
  });

  it("SecureMode 2: other devices' topics 4.03, unknown paths 4.04, GET 4.05, a non-JSON payload 4.00, NON answered", async () => {
    const connection = await connect("enosPump,pump-03,2,3600", pump.secretFor("pump-03"));
    try {
      const ask = (method: "GET" | "POST", path: string, payload = "{}", confirmable = true) =>
        connection.coap.request({ method, path, payload, confirmable, timeoutMs: 5000 }).then((r) => r.code);
      assert.equal(await ask("POST", "/topic/sys/enosPump/pump-01/thing/measurepoint/post"), "4.03");
      assert.equal(await ask("POST", "/topic/ext/session/enosPump/pump-03/thing/activate/info"), "4.03");
      assert.equal(await ask("GET", "/topic/ext/session/enosPump/pump-03/thing/activate/info"), "4.03");
      assert.equal(await ask("POST", "/elsewhere"), "4.04");
      assert.equal(await ask("GET", "/topic/sys/enosPump/pump-03/thing/measurepoint/post"), "4.05");
      assert.equal(
        await ask("POST", "/topic/sys/enosPump/pump-03/thing/measurepoint/post", "not json"),
        "4.00",
      );
      assert.equal(await ask("POST", "/topic/sys/enosPump/pump-03/a/b/c/d/e"), "4.00"); // 8 slashes
      assert.equal(
        await ask("POST", "/topic/sys/enosPump/pump-03/thing/measurepoint/post", "{}", false),
        "2.04",
      );
    } finally {
      await connection.close();
    }
  });

  it("SecureMode 3: activation answers thing.activate.info once-created; the device then logs in with SecureMode 2", async () => {
    // Before activation the device has no secret of its own: SecureMode 2 has no key.
    await refused("enosMeter,meter-01,2,3600", meter.productSecret);
    const activate = async () => {
      const connection = await connect("enosMeter,meter-01,3,3600", meter.productSecret);
      try {
        const response = await connection.coap.request({
          method: "GET",
          path: "/topic/ext/session/enosMeter/meter-01/thing/activate/info",
        });
        assert.equal(response.code, "2.05");
        assert.equal(response.contentFormat, ContentFormat.json);
        return JSON.parse(response.payload.toString());
      } finally {
        await connection.close();
      }
    };
    const info = await activate();
    assert.equal(info.method, "thing.activate.info");
    assert.equal(info.version, "1.0");
    assert.deepEqual(
      { productKey: info.params.productKey, deviceKey: info.params.deviceKey, assetId: info.params.assetId },
      { productKey: "enosMeter", deviceKey: "meter-01", assetId: "meter-01" },
    );
    assert.equal((await activate()).params.deviceSecret, info.params.deviceSecret, "created once");
    assert.equal((await stack.services.registry.getDevice("meter-01"))?.status, "registered");

    // The product secret no longer works for SecureMode 2, the device secret does.
    await refused("enosMeter,meter-01,2,3600", meter.productSecret);
    const connection = await connect("enosMeter,meter-01,2,3600", info.params.deviceSecret);
    try {
      const posted = await connection.coap.request({
        method: "POST",
        path: "/topic/sys/enosMeter/meter-01/thing/measurepoint/post",
        payload: "{}",
      });
      assert.equal(posted.code, "2.04");
    } finally {
      await connection.close();
    }
    for (
      let i = 0;
      i < 50 && (await stack.services.registry.getDevice("meter-01"))?.status !== "provisioned";
      i++
    )
      await new Promise((r) => setTimeout(r, 50));
    assert.equal((await stack.services.registry.getDevice("meter-01"))?.status, "provisioned");
  });

  it("a SecureMode 3 session may do nothing but its own activation request", async () => {
    const connection = await connect("enosMeter,meter-02,3,30", meter.productSecret);
    try {
      const ask = (method: "GET" | "POST", path: string) =>
        connection.coap.request({ method, path, payload: "{}" }).then((r) => r.code);
      assert.equal(await ask("POST", "/topic/sys/enosMeter/meter-02/thing/measurepoint/post"), "4.03");
      assert.equal(await ask("GET", "/topic/ext/session/enosMeter/meter-01/thing/activate/info"), "4.03");
      assert.equal(await ask("POST", "/topic/ext/session/enosMeter/meter-02/thing/activate/info"), "4.05");
    } finally {
      await connection.close();
    }
    assert.equal(
      (await stack.services.registry.getDevice("meter-02"))?.sealedSecret,
      undefined,
      "not activated",
    );
  });

  it("a wrong key, an unknown device or product, a disabled device, SecureMode 3 without dynamic activation: the handshake fails", async () => {
    await refused("enosPump,pump-03,2,3600", "not-the-secret");
    await refused("enosPump,pump-99,2,3600", "whatever");
    await refused("enosNope,pump-01,2,3600", "whatever");
    await refused("enosPump,pump-02,2,3600", pump.secretFor("pump-02"));
    await refused("enosPump,pump-03,3,3600", pump.productSecret);
    await refused("enosPump,pump-03,2,20", pump.secretFor("pump-03")); // Lifetime under 30 s
    await refused("enosPump,pump-03,4,3600", pump.secretFor("pump-03"));
    assert.ok(stack.coap.gateway.stats().refusedIdentities >= 6);
  });
});
