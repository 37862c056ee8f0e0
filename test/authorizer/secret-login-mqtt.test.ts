import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { MqttClient } from "mqtt";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import { buildEnosMqttCredentials } from "#credentials/enos-mqtt.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";
import { secretLoginClient } from "#test/support/secret-login-mqtt.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type Login = { clientId: string; username: string; password: string };

/**
 * Devices born with a secret against the local MQTT endpoint over TLS without a client
 * certificate: the endpoint asks the real custom authorizer handler and enforces the policy it
 * returns; Alibaba registration (seed 002) and EnOS activation (seed 000) answers are pushed as
 * those platforms do. Real `mqtt` clients throughout.
 */
describe("secret logins over the local MQTT endpoint", () => {
  let stack: Stack;
  let lamp: Awaited<ReturnType<typeof seedProduct>>;
  let dynamicSecret: string;
  let meterProductSecret: string;

  before(async () => {
    stack = await startTestStack();
    lamp = await seedProduct(
      stack.services,
      { productKey: "a1Lamp", name: "Lamp", mqttAuth: { scheme: "aliyun" } },
      ["lamp-01", "lamp-02"],
    );
    ({ productSecret: dynamicSecret } = await seedProduct(
      stack.services,
      {
        productKey: "al123456789",
        name: "Seed 002",
        authMode: "product-secret",
        mqttAuth: { scheme: "aliyun-dynamic", allowRegnwl: true },
      },
      ["device1"],
    ));
    ({ productSecret: meterProductSecret } = await seedProduct(
      stack.services,
      {
        productKey: "enosMeter",
        name: "Meter",
        authMode: "product-secret",
        mqttAuth: { scheme: "enos", dynamicActivation: true },
      },
      ["meter-01"],
    ));
  });
  after(() => stack.stop());

  /** Connects once; resolves the client, or undefined when the endpoint refused. */
  const connect = (login: Login): Promise<MqttClient | undefined> =>
    new Promise((resolve) => {
      const client = secretLoginClient(stack, login);
      client.once("connect", () => resolve(client));
      client.once("close", () => {
        if (!client.connected) {
          client.end(true);
          resolve(undefined);
        }
      });
      client.on("error", () => undefined);
    });

  const closed = (client: MqttClient) =>
    new Promise<boolean>((resolve) => {
      if (!client.connected) return resolve(true);
      const timer = setTimeout(() => resolve(false), 5000);
      client.once("close", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  it("an Alibaba device logs in with its secret and may use only its own topics", async () => {
    const login = buildAliyunMqttCredentials({
      productKey: "a1Lamp",
      deviceName: "lamp-01",
      deviceSecret: lamp.secretFor("lamp-01"),
      timestamp: Date.now(),
    });
    const client = await connect(login);
    assert.ok(client, "connected");
    try {
      await client.publishAsync("/a1Lamp/lamp-01/user/update", "{}", { qos: 1 });
      assert.equal((await client.subscribeAsync("/sys/a1Lamp/lamp-01/thing/service/+"))[0]?.qos, 0);
      // Another device's topics: SUBACK failure (0x80), which mqtt.js reports as an error.
      await assert.rejects(client.subscribeAsync("/sys/a1Lamp/lamp-02/#"), /Subscribe error/);
      client.publish("/a1Lamp/lamp-02/user/update", "{}", { qos: 1 });
      assert.equal(await closed(client), true, "publishing as another device disconnects");
    } finally {
      client.end(true);
    }
    assert.equal(
      (await stack.services.registry.getDevice("lamp-01"))?.status,
      "provisioned",
      "first login committed",
    );
    const wrong = await connect({ ...login, password: "0".repeat(64) });
    assert.equal(wrong, undefined, "a wrong password is refused");
  });

  it("seed 002's regnwl device code: register on /ext/regnwl, then connwl with the token", async () => {
    // Written from seed 002's text: clientId Date.now()|securemode=2,authType=regnwl,random=...,
    // signmethod=hmacsha1|, username deviceName&productKey, password hmac_sha1(productSecret, content).
    const productInfo = {
      productKey: "al123456789",
      productSecret: dynamicSecret,
      deviceName: "seed002-new",
    };
    const random = Date.now();
    const content = `deviceName${productInfo.deviceName}productKey${productInfo.productKey}random${random}`;
    const options = {
      clientId: `${Date.now()}|securemode=2,authType=regnwl,random=${random},signmethod=hmacsha1|`,
      username: `${productInfo.deviceName}&${productInfo.productKey}`,
      password: createHmac("sha1", productInfo.productSecret).update(content).digest("hex"),
    };
    const registerClient = await connect(options);
    assert.ok(registerClient, "the registration connection is accepted");
    const message = await new Promise<{ topic: string; payload: string }>((resolve) =>
      registerClient.on("message", (topic, payload) => resolve({ topic, payload: payload.toString() })),
    );
    assert.equal(message.topic, "/ext/regnwl");
    const identity = JSON.parse(message.payload) as {
      productKey: string;
      deviceName: string;
      clientId: string;
      deviceToken: string;
    };
    assert.deepEqual(Object.keys(identity).sort(), ["clientId", "deviceName", "deviceToken", "productKey"]);
    assert.equal(await closed(registerClient), true, "the platform ends the registration connection");

    const device = await connect({
      clientId: `${identity.clientId}|securemode=-2,authType=connwl|`,
      username: `${identity.deviceName}&${identity.productKey}`,
      password: identity.deviceToken,
    });
    assert.ok(device, "connwl with the token");
    await device.publishAsync(`/${identity.productKey}/${identity.deviceName}/user/update`, '{"on":1}', {
      qos: 1,
    });
    device.end(true);
  });

  it("register (pre-registered) pushes the device secret on /ext/register; it then logs in", async () => {
    const random = 7;
    const content = `deviceNamedevice1productKeyal123456789random${random}`;
    const client = await connect({
      clientId: `device1|securemode=2,authType=register,random=${random},signmethod=hmacsha256|`,
      username: "device1&al123456789",
      password: createHmac("sha256", dynamicSecret).update(content).digest("hex"),
    });
    assert.ok(client);
    const message = await new Promise<{ topic: string; payload: string }>((resolve) =>
      client.on("message", (topic, payload) => resolve({ topic, payload: payload.toString() })),
    );
    assert.equal(message.topic, "/ext/register");
    const { deviceSecret } = JSON.parse(message.payload) as { deviceSecret: string };
    await closed(client);
    const login = buildAliyunMqttCredentials({
      productKey: "al123456789",
      deviceName: "device1",
      deviceSecret,
      timestamp: Date.now(),
    });
    const device = await connect(login);
    assert.ok(device, "the registered secret logs in");
    device.end(true);
  });

  it("EnOS SecureMode 3 activation pushes thing.activate.info; SecureMode 2 with that secret logs in", async () => {
    const secure3 = buildEnosMqttCredentials({
      productKey: "enosMeter",
      deviceKey: "meter-01",
      secret: meterProductSecret,
      secureMode: 3,
      timestamp: Date.now(),
    });
    const client = await connect(secure3);
    assert.ok(client);
    const message = await new Promise<{ topic: string; payload: string }>((resolve) =>
      client.on("message", (topic, payload) => resolve({ topic, payload: payload.toString() })),
    );
    assert.equal(message.topic, "/ext/session/enosMeter/meter-01/thing/activate/info");
    const info = JSON.parse(message.payload) as {
      method: string;
      params: { deviceSecret: string; deviceKey: string };
    };
    assert.equal(info.method, "thing.activate.info");
    assert.equal(info.params.deviceKey, "meter-01");
    // The activation session may do nothing else.
    client.publish("/sys/enosMeter/meter-01/thing/measurepoint/post", "{}", { qos: 1 });
    assert.equal(await closed(client), true);

    const secure2 = buildEnosMqttCredentials({
      productKey: "enosMeter",
      deviceKey: "meter-01",
      secret: info.params.deviceSecret,
      timestamp: Date.now(),
    });
    const device = await connect(secure2);
    assert.ok(device, "SecureMode 2 with the activated secret");
    await device.publishAsync("/sys/enosMeter/meter-01/thing/measurepoint/post", "{}", { qos: 1 });
    device.end(true);
  });
});
