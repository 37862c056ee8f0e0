import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "#core/logger.ts";
import { registerDevice } from "#core/registration/register-device.ts";
import { resetRegistration } from "#core/registration/reset-registration.ts";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import { buildAliyunConnwlCredentials } from "#credentials/aliyun-register.ts";
import {
  buildAliyunRegisterForm,
  parseAliyunRegisterForm,
  verifyAliyunRegisterForm,
} from "#credentials/aliyun-register-form.ts";
import { makeCustomAuthorizerHandler } from "#handlers/custom-authorizer.ts";
import { AUTHORIZER_POLICY_DOCUMENTS, loadPolicyDocument } from "#templates/catalog.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type Answer = {
  code: number;
  data?: { productKey: string; deviceName: string; deviceSecret: string };
  errorCode?: string;
};

/**
 * Alibaba-style dynamic registration (one secret per product, seed 002) against the local stack:
 * `POST /auth/register/device` over real HTTP as the seed's device code does it, then the secret
 * it returned logging in through the custom authorizer; register-once and reset; regnwl tokens.
 */
describe("dynamic registration", () => {
  let stack: Stack;
  let productSecret: string;
  let authorize: ReturnType<typeof makeCustomAuthorizerHandler>;

  before(async () => {
    stack = await startTestStack();
    ({ productSecret } = await seedProduct(
      stack.services,
      {
        productKey: "a1Reg",
        name: "Dynamic",
        authMode: "product-secret",
        mqttAuth: { scheme: "aliyun-dynamic", allowRegnwl: true },
      },
      ["reg-01", "reg-02", "reg-03", "reg-04"],
    ));
    await seedProduct(
      stack.services,
      {
        productKey: "a1NoNwl",
        name: "No regnwl",
        authMode: "product-secret",
        mqttAuth: { scheme: "aliyun-dynamic", allowRegnwl: false },
      },
      [],
    );
    authorize = makeCustomAuthorizerHandler({
      ...stack.services,
      policies: {
        device: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.device),
        activation: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.activation),
      },
      logger: silentLogger,
    });
  });
  after(() => stack.stop());

  /** The seed's HTTPS registration: form-urlencoded, signed with the product secret. */
  const register = async (
    deviceName: string,
    secret = productSecret,
  ): Promise<Answer & { status: number }> => {
    const request = buildAliyunRegisterForm({
      productKey: "a1Reg",
      deviceName,
      productSecret: secret,
      random: String(Math.floor(Math.random() * 1e9)),
    });
    const res = await fetch(`${stack.endpoints.api}/auth/register/device`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: request.body,
    });
    return { status: res.status, ...((await res.json()) as Answer) };
  };

  const login = async (deviceName: string, deviceSecret: string) => {
    const c = buildAliyunMqttCredentials({
      productKey: "a1Reg",
      deviceName,
      deviceSecret,
      timestamp: Date.now(),
    });
    const response = await authorize({
      protocolData: { mqtt: { ...c, password: Buffer.from(c.password).toString("base64") } },
    });
    return response.isAuthenticated;
  };

  it("registers a pre-registered device over HTTPS; its secret logs in; then register-once until reset", async () => {
    const first = await register("reg-01");
    assert.equal(first.status, 200);
    assert.equal(first.code, 200);
    assert.equal(first.data?.deviceName, "reg-01");
    const secret = first.data!.deviceSecret;
    assert.ok(secret.length >= 24);
    const stored = await stack.services.registry.getDevice("reg-01");
    assert.ok(stored?.sealedSecret && !stored.sealedSecret.includes(secret), "stored sealed only");

    assert.equal(await login("reg-01", secret), true);
    assert.equal((await stack.services.registry.getDevice("reg-01"))?.status, "provisioned");
    const again = await register("reg-01");
    assert.deepEqual([again.status, again.errorCode], [409, "ALREADY_REGISTERED"]);

    await resetRegistration(stack.services, "reg-01");
    assert.equal(await login("reg-01", secret), false, "the old secret is forgotten by the reset");
    const fresh = await register("reg-01");
    assert.equal(fresh.status, 200);
    assert.notEqual(fresh.data?.deviceSecret, secret);
    assert.equal(await login("reg-01", fresh.data!.deviceSecret), true);
  });

  it("before the first login a repeated registration answers the same secret within seconds, a new one later (the newest only is valid)", async () => {
    const at = Date.now();
    const verify = () => undefined;
    const deps = { ...stack.services, logger: silentLogger };
    const a = await registerDevice(
      { ...deps, clock: () => at },
      { productKey: "a1Reg", deviceName: "reg-02", authType: "register", verify },
    );
    const b = await registerDevice(
      { ...deps, clock: () => at + 1_000 },
      { productKey: "a1Reg", deviceName: "reg-02", authType: "register", verify },
    );
    const c = await registerDevice(
      { ...deps, clock: () => at + 60_000 },
      { productKey: "a1Reg", deviceName: "reg-02", authType: "register", verify },
    );
    assert.ok(a.authType === "register" && b.authType === "register" && c.authType === "register");
    assert.equal(b.deviceSecret, a.deviceSecret);
    assert.notEqual(c.deviceSecret, a.deviceSecret);
    assert.equal(await login("reg-02", a.deviceSecret), false, "the older secret no longer logs in");
    assert.equal(await login("reg-02", c.deviceSecret), true);
  });

  it("100 concurrent registrations of one device name get one secret", async () => {
    const answers = await Promise.all(Array.from({ length: 100 }, () => register("reg-03")));
    const secrets = new Set(answers.map((a) => a.data?.deviceSecret));
    assert.deepEqual(
      answers.filter((a) => a.status !== 200).map((a) => a.status),
      [],
    );
    assert.equal(secrets.size, 1);
  });

  it("refuses a wrong product secret, an unknown device name, and a malformed form", async () => {
    assert.equal((await register("reg-04", "not-the-product-secret")).status, 403);
    assert.equal((await register("nobody")).status, 403);
    const res = await fetch(`${stack.endpoints.api}/auth/register/device`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "productKey=a1Reg&deviceName=reg-04",
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as Answer).code, 400);
  });

  it("regnwl: registers a device that was not pre-registered and its token logs in (connwl); refused where not allowed", async () => {
    const deps = { ...stack.services, logger: silentLogger };
    const form = buildAliyunRegisterForm({
      productKey: "a1Reg",
      deviceName: "new-01",
      productSecret,
      random: "42",
    });
    const parsed = parseAliyunRegisterForm(form.body);
    const result = await registerDevice(deps, {
      productKey: "a1Reg",
      deviceName: "new-01",
      authType: "regnwl",
      clientId: "new-01.c1",
      verify: (secret) => verifyAliyunRegisterForm(parsed, secret),
    });
    assert.equal(result.authType, "regnwl");
    if (result.authType !== "regnwl") return;
    assert.equal((await stack.services.registry.getDevice("new-01"))?.productKey, "a1Reg");
    const c = buildAliyunConnwlCredentials({
      clientId: result.clientId,
      productKey: "a1Reg",
      deviceName: "new-01",
      deviceToken: result.deviceToken,
    });
    const response = await authorize({
      protocolData: { mqtt: { ...c, password: Buffer.from(c.password).toString("base64") } },
    });
    assert.equal(response.isAuthenticated, true);
    const stored = await stack.services.registry.getDevice("new-01");
    assert.ok(
      stored?.deviceTokenHash && stored.deviceTokenHash !== result.deviceToken,
      "the token is kept hashed",
    );

    await assert.rejects(
      registerDevice(deps, {
        productKey: "a1NoNwl",
        deviceName: "new-02",
        authType: "regnwl",
        verify: () => undefined,
      }),
      /not allowed/,
    );
    assert.equal(await stack.services.registry.getDevice("new-02"), undefined, "no record made");
  });
});
