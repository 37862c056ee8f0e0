import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ALIYUN_SIGN_METHODS,
  type AliyunMqttInput,
  buildAliyunMqttCredentials,
  parseMqttConnect,
  verifyMqttConnect,
} from "#credentials/index.ts";
import { name, RUNS, secret, throwsCredential, timestamp } from "./arbitraries.ts";

const input = fc
  .record({
    clientId: name,
    productKey: name,
    deviceName: name,
    deviceSecret: secret,
    secureMode: fc.constantFrom(2 as const, 3 as const),
    signMethod: fc.constantFrom(...ALIYUN_SIGN_METHODS),
    timestamp,
    hexCase: fc.constantFrom("upper" as const, "lower" as const),
  })
  .map((r): AliyunMqttInput & { timestamp: number } => ({ ...r }));

describe("Alibaba MQTT sign", () => {
  it("round-trips build -> parse -> verify", () => {
    fc.assert(
      fc.property(input, (i) => {
        const built = buildAliyunMqttCredentials(i);
        assert.match(built.password, i.hexCase === "upper" ? /^[0-9A-F]+$/ : /^[0-9a-f]+$/);
        const request = parseMqttConnect(built);
        assert.equal(request.scheme, "aliyun-sign");
        if (request.scheme !== "aliyun-sign") return;
        assert.equal(request.clientId, i.clientId);
        assert.equal(request.deviceName, i.deviceName);
        assert.equal(request.productKey, i.productKey);
        assert.equal(request.secureMode, i.secureMode);
        assert.equal(request.signMethod, i.signMethod);
        assert.equal(request.timestamp, String(i.timestamp));
        verifyMqttConnect(request, i.deviceSecret, { now: i.timestamp });
      }),
      RUNS,
    );
  });

  it("changes the password when any input changes", () => {
    const field = fc.constantFrom("clientId", "productKey", "deviceName", "deviceSecret", "timestamp");
    fc.assert(
      fc.property(input, field, name, timestamp, (i, key, other, otherTime) => {
        const changed = key === "timestamp" ? { ...i, timestamp: otherTime } : { ...i, [key]: other };
        fc.pre(changed[key] !== i[key]);
        assert.notEqual(buildAliyunMqttCredentials(changed).password, buildAliyunMqttCredentials(i).password);
      }),
      RUNS,
    );
  });

  it("rejects a tampered password and a timestamp outside the window", () => {
    fc.assert(
      fc.property(input, fc.nat(), (i, position) => {
        const built = buildAliyunMqttCredentials(i);
        const at = position % built.password.length;
        const tampered =
          built.password.slice(0, at) +
          (built.password[at] === "0" ? "1" : "0") +
          built.password.slice(at + 1);
        throwsCredential(
          () =>
            verifyMqttConnect(parseMqttConnect({ ...built, password: tampered }), i.deviceSecret, {
              now: i.timestamp,
            }),
          "BAD_SIGNATURE",
          "password",
        );
        throwsCredential(
          () =>
            verifyMqttConnect(parseMqttConnect(built), i.deviceSecret, {
              now: i.timestamp + 15 * 60_000 + 1,
            }),
          "STALE_TIMESTAMP",
          "timestamp",
        );
        verifyMqttConnect(parseMqttConnect(built), i.deviceSecret, { now: i.timestamp - 15 * 60_000 });
      }),
      { numRuns: 60 },
    );
  });

  it("honours a configured window", () => {
    const built = buildAliyunMqttCredentials({
      productKey: "pk",
      deviceName: "dn",
      deviceSecret: "s",
      timestamp: 1_000_000,
    });
    const request = parseMqttConnect(built);
    verifyMqttConnect(request, "s", { now: 1_005_000, maxClockSkewMs: 5_000 });
    throwsCredential(
      () => verifyMqttConnect(request, "s", { now: 1_005_001, maxClockSkewMs: 5_000 }),
      "STALE_TIMESTAMP",
    );
    verifyMqttConnect(request, "s", { now: 9e12, maxClockSkewMs: Number.POSITIVE_INFINITY });
  });

  it("without a timestamp: signs without it, and verification requires it unless told otherwise", () => {
    const built = buildAliyunMqttCredentials({ productKey: "pk", deviceName: "dn", deviceSecret: "s" });
    assert.equal(built.clientId, "pk.dn|securemode=2,signmethod=hmacsha256|");
    const request = parseMqttConnect(built);
    throwsCredential(() => verifyMqttConnect(request, "s"), "MISSING_PARAMETER", "timestamp");
    verifyMqttConnect(request, "s", { requireTimestamp: false });
  });

  it("checks the signature before the clock, so a wrong secret never learns about the window", () => {
    const built = buildAliyunMqttCredentials({
      productKey: "pk",
      deviceName: "dn",
      deviceSecret: "s",
      timestamp: 1,
    });
    throwsCredential(() => verifyMqttConnect(parseMqttConnect(built), "other"), "BAD_SIGNATURE");
  });

  it("never puts the secret or the expected password in an error message", () => {
    const deviceSecret = "TOP-SECRET-VALUE";
    const good = buildAliyunMqttCredentials({
      productKey: "pk",
      deviceName: "dn",
      deviceSecret,
      timestamp: 1,
    });
    const bad = { ...good, password: "0".repeat(64) };
    for (const now of [1, 10 ** 12]) {
      try {
        verifyMqttConnect(parseMqttConnect(bad), deviceSecret, { now });
        assert.fail("verified a bad password");
      } catch (error) {
        const text = `${String(error)} ${JSON.stringify(error)}`;
        assert.ok(!text.includes(deviceSecret));
        assert.ok(!text.toLowerCase().includes(good.password.toLowerCase()));
      }
    }
  });
});
