import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DescribeThingCommand } from "@aws-sdk/client-iot";
import { DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import fc from "fast-check";
import { principalIdFor } from "#core/authorizer/authorize-mqtt-connect.ts";
import type { Logger } from "#core/logger.ts";
import { disableDevice, revokeDevice } from "#core/registry/manage-devices.ts";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import { buildAliyunConnwlCredentials } from "#credentials/aliyun-register.ts";
import { buildEnosMqttCredentials } from "#credentials/enos-mqtt.ts";
import { hashHex } from "#credentials/sign.ts";
import { type AuthorizerResponse, makeCustomAuthorizerHandler } from "#handlers/custom-authorizer.ts";
import { evaluatePolicies, parsePolicyDocument } from "#local/mqtt/policy-engine.ts";
import { AUTHORIZER_POLICY_DOCUMENTS, loadPolicyDocument } from "#templates/catalog.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type Credentials = { clientId: string; username: string; password: string };

/** The event AWS IoT sends a custom authorizer for an MQTT CONNECT (password base64). */
const eventFor = (c: Credentials) => ({
  token: "",
  signatureVerified: false,
  protocols: ["tls", "mqtt"],
  protocolData: {
    tls: { serverName: "example.iot.us-east-1.amazonaws.com" },
    mqtt: {
      clientId: c.clientId,
      username: c.username,
      password: Buffer.from(c.password).toString("base64"),
    },
  },
  connectionMetadata: { id: "00000000-0000-0000-0000-000000000000" },
});

/**
 * The custom authorizer (handler + use case) against the local stack: the real registry on
 * dynalite, product secrets in the Secrets Manager emulator, things in the IoT emulator; device
 * credentials made by the credentials module exactly as device code makes them.
 */
describe("custom authorizer for secret-born devices", () => {
  let stack: Stack;
  let handler: ReturnType<typeof makeCustomAuthorizerHandler>;
  const lines: string[] = [];
  let aliyun: Awaited<ReturnType<typeof seedProduct>>;
  let enos: Awaited<ReturnType<typeof seedProduct>>;

  before(async () => {
    stack = await startTestStack();
    aliyun = await seedProduct(
      stack.services,
      {
        productKey: "a1Lamp",
        name: "Aliyun lamp",
        mqttAuth: { scheme: "aliyun", timestampWindowSeconds: 300 },
      },
      ["lamp-01", "lamp-02", "lamp-03", "lamp-04"],
    );
    enos = await seedProduct(
      stack.services,
      { productKey: "enosMeter", name: "EnOS meter", mqttAuth: { scheme: "enos", dynamicActivation: true } },
      ["meter-01"],
    );
    await seedProduct(
      stack.services,
      {
        productKey: "a1Dyn",
        name: "Dynamic",
        authMode: "product-secret",
        mqttAuth: { scheme: "aliyun-dynamic", allowRegnwl: true },
      },
      ["dyn-01"],
    );
    await seedProduct(stack.services, { productKey: "certOnly", name: "Certificates" }, ["cert-01"]);
    const logger: Logger = {
      debug() {},
      info: (m, ...e) => lines.push(JSON.stringify({ m, ...Object.assign({}, ...e) })),
      warn: (m, ...e) => lines.push(JSON.stringify({ m, ...Object.assign({}, ...e) })),
      error: (m, ...e) => lines.push(JSON.stringify({ m, ...Object.assign({}, ...e) })),
    };
    handler = makeCustomAuthorizerHandler({
      ...stack.services,
      policies: {
        device: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.device),
        activation: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.activation),
      },
      logger,
    });
  });
  after(() => stack.stop());

  const aliyunLogin = (
    deviceName: string,
    extra: Partial<Parameters<typeof buildAliyunMqttCredentials>[0]> = {},
  ) =>
    buildAliyunMqttCredentials({
      productKey: "a1Lamp",
      deviceName,
      deviceSecret: aliyun.secretFor(deviceName),
      timestamp: Date.now(),
      ...extra,
    });

  /** What the returned policy allows, evaluated by the local policy engine. */
  const allows = (response: AuthorizerResponse, action: "iot:Publish" | "iot:Connect", resource: string) =>
    evaluatePolicies(
      response.policyDocuments.map((d, i) => parsePolicyDocument(`authorizer-${i}`, d)),
      { action, resource, context: { clientId: "any" } },
    ).allowed;

  it("allows Alibaba sign logins (hmacsha1/sha256/md5, with and without timestamp), scoped to the device", async () => {
    for (const signMethod of ["hmacsha1", "hmacsha256", "hmacmd5"] as const) {
      for (const timestamp of [Date.now(), undefined]) {
        const login = aliyunLogin("lamp-01", {
          signMethod,
          ...(timestamp ? { timestamp } : { timestamp: undefined }),
        });
        const response = await handler(eventFor(login));
        assert.equal(response.isAuthenticated, true, `${signMethod} ${timestamp}`);
        assert.equal(response.principalId, principalIdFor("lamp-01"));
        assert.match(response.principalId, /^[a-zA-Z0-9]{1,128}$/);
        assert.ok(response.policyDocuments.every((d) => d.length <= 2048));
        assert.ok(response.refreshAfterInSeconds >= 300 && response.disconnectAfterInSeconds <= 86_400);
      }
    }
    const login = aliyunLogin("lamp-01");
    const response = await handler(eventFor(login));
    const arn = (kind: string, name: string) => `arn:aws:iot:us-east-1:000000000000:${kind}/${name}`;
    const clientId = login.clientId;
    assert.equal(allows(response, "iot:Connect", arn("client", clientId)), true);
    assert.equal(allows(response, "iot:Connect", arn("client", "someone-else")), false);
    assert.equal(allows(response, "iot:Publish", arn("topic", "/a1Lamp/lamp-01/user/update")), true);
    assert.equal(
      allows(response, "iot:Publish", arn("topic", "/sys/a1Lamp/lamp-01/thing/event/property/post")),
      true,
    );
    assert.equal(
      allows(response, "iot:Publish", arn("topic", "/a1Lamp/lamp-02/user/update")),
      false,
      "another device",
    );
    assert.equal(
      allows(response, "iot:Publish", arn("topic", "/sys/a1Lamp/lamp-02/thing/event/property/post")),
      false,
    );
  });

  it("the first login makes the thing and commits the registry; later logins only read", async () => {
    assert.equal((await handler(eventFor(aliyunLogin("lamp-02")))).isAuthenticated, true);
    const device = await stack.services.registry.getDevice("lamp-02");
    assert.equal(device?.status, "provisioned");
    assert.equal(device?.thingName, "lamp-02");
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: "lamp-02" }));
    assert.deepEqual(thing.attributes, { serialNumber: "lamp-02", productKey: "a1Lamp", authMode: "aliyun" });
    assert.equal((await handler(eventFor(aliyunLogin("lamp-02")))).isAuthenticated, true);
    assert.equal((await stack.services.registry.getDevice("lamp-02"))?.version, device?.version, "no write");
  });

  it("denies a wrong secret, a stale timestamp, unknown/disabled/revoked devices, another product's device", async () => {
    const denied = async (c: Credentials) => (await handler(eventFor(c))).isAuthenticated === false;
    assert.ok(await denied(aliyunLogin("lamp-01", { deviceSecret: "not-the-secret" })));
    assert.ok(
      await denied(aliyunLogin("lamp-01", { timestamp: Date.now() - 600_000 })),
      "outside the 300 s window",
    );
    assert.ok(await denied({ ...aliyunLogin("nobody"), username: "nobody&a1Lamp" }));
    assert.ok(
      await denied(
        buildAliyunMqttCredentials({
          productKey: "certOnly",
          deviceName: "cert-01",
          deviceSecret: "x".repeat(32),
          timestamp: Date.now(),
        }),
      ),
      "a certificate product has no secret login",
    );
    await disableDevice(stack.services, "lamp-03", "lost");
    assert.ok(await denied(aliyunLogin("lamp-03")));
    await revokeDevice(stack.services, "lamp-04", "stolen");
    assert.ok(await denied(aliyunLogin("lamp-04")));
    const reasons = lines.map((l) => JSON.parse(l) as { reason?: string }).map((l) => l.reason);
    for (const reason of [
      "bad-credentials",
      "stale-timestamp",
      "unknown-device",
      "not-a-secret-product",
      "device-disabled",
      "device-revoked",
    ]) {
      assert.ok(reasons.includes(reason), reason);
    }
  });

  it("accepts the ?x-amz-customauthorizer-name suffix on the username", async () => {
    const login = aliyunLogin("lamp-01");
    const response = await handler(
      eventFor({ ...login, username: `${login.username}?x-amz-customauthorizer-name=onramp` }),
    );
    assert.equal(response.isAuthenticated, true);
  });

  it("EnOS: SecureMode 2 with the device secret; SecureMode 3 (product secret) gets the activation topics only", async () => {
    const secure2 = buildEnosMqttCredentials({
      productKey: "enosMeter",
      deviceKey: "meter-01",
      secret: enos.secretFor("meter-01"),
      timestamp: Date.now(),
    });
    const full = await handler(eventFor(secure2));
    assert.equal(full.isAuthenticated, true);
    const secure3 = buildEnosMqttCredentials({
      productKey: "enosMeter",
      deviceKey: "meter-01",
      secret: enos.productSecret,
      secureMode: 3,
      timestamp: Date.now(),
    });
    const activation = await handler(eventFor(secure3));
    assert.equal(activation.isAuthenticated, true);
    const topic = (t: string) => `arn:aws:iot:us-east-1:000000000000:topic/${t}`;
    assert.equal(
      allows(activation, "iot:Publish", topic("/ext/session/enosMeter/meter-01/thing/activate/info_reply")),
      true,
    );
    assert.equal(
      allows(activation, "iot:Publish", topic("/sys/enosMeter/meter-01/thing/measurepoint/post")),
      false,
    );
    assert.equal(allows(full, "iot:Publish", topic("/sys/enosMeter/meter-01/thing/measurepoint/post")), true);
    const wrong = buildEnosMqttCredentials({
      ...{ productKey: "enosMeter", deviceKey: "meter-01" },
      secret: "wrong",
      timestamp: Date.now(),
    });
    assert.equal((await handler(eventFor(wrong))).isAuthenticated, false);
  });

  it("connwl: a device token (kept hashed) logs in; the product secret alone does not", async () => {
    const token = "t0ken-issued-by-regnwl";
    // The token as dynamic registration (regnwl) stores it: hashed on the device record.
    const dynamo = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: stack.endpoints.dynamodb,
        region: stack.endpoints.region,
        credentials: stack.credentials,
      }),
    );
    await dynamo.send(
      new UpdateCommand({
        TableName: stack.endpoints.tableName,
        Key: { pk: "DEVICE#dyn-01", sk: "DEVICE" },
        UpdateExpression: "SET deviceTokenHash = :h",
        ExpressionAttributeValues: { ":h": hashHex("sha256", token) },
      }),
    );
    dynamo.destroy();
    const login = buildAliyunConnwlCredentials({
      clientId: "dyn-01.c1",
      productKey: "a1Dyn",
      deviceName: "dyn-01",
      deviceToken: token,
    });
    assert.equal((await handler(eventFor(login))).isAuthenticated, true);
    const forged = buildAliyunConnwlCredentials({
      clientId: "dyn-01.c1",
      productKey: "a1Dyn",
      deviceName: "dyn-01",
      deviceToken: "guess",
    });
    assert.equal((await handler(eventFor(forged))).isAuthenticated, false);
    // Before registration a dynamic product's device has no secret of its own: a sign login fails.
    const early = buildAliyunMqttCredentials({
      productKey: "a1Dyn",
      deviceName: "dyn-01",
      deviceSecret: "x".repeat(32),
      timestamp: Date.now(),
    });
    assert.equal((await handler(eventFor(early))).isAuthenticated, false);
  });

  it("fuzz: arbitrary client ids, usernames and passwords always get a clean deny, never a throw", async () => {
    const before = lines.length;
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 300 }),
        fc.string({ maxLength: 300 }),
        fc.string({ maxLength: 300 }),
        async (clientId, username, password) => {
          const response = await handler(eventFor({ clientId, username, password }));
          assert.equal(response.isAuthenticated, false);
          assert.deepEqual(response.policyDocuments, []);
        },
      ),
      { numRuns: 500 },
    );
    for (const odd of [
      null,
      undefined,
      "x",
      42,
      [],
      { protocolData: null },
      { protocolData: { mqtt: { password: 7 } } },
    ]) {
      assert.equal((await handler(odd)).isAuthenticated, false);
    }
    assert.ok(
      lines.slice(before).every((l) => !l.includes("password")),
      "no password in the log",
    );
  });

  it("never logs the password", () => {
    const secret = aliyun.secretFor("lamp-01");
    assert.ok(lines.length > 0);
    assert.ok(lines.every((l) => !l.includes(secret)));
  });
});
