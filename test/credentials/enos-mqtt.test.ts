import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  buildEnosMqttCredentials,
  ENOS_SIGN_METHODS,
  type EnosMqttInput,
  parseMqttConnect,
  verifyMqttConnect,
} from "#credentials/index.ts";
import { name, RUNS, secret, throwsCredential, timestamp } from "./arbitraries.ts";

const input: fc.Arbitrary<EnosMqttInput> = fc
  .record({
    clientId: name,
    productKey: name,
    deviceKey: name,
    secret,
    secureMode: fc.constantFrom(2 as const, 3 as const),
    signMethod: fc.constantFrom(...ENOS_SIGN_METHODS),
    timestamp,
  })
  .map((r) => ({ ...r }));

const MINUTE = 60_000;

describe("EnOS MQTT sign", () => {
  it("round-trips build -> parse -> verify", () => {
    fc.assert(
      fc.property(input, (i) => {
        const built = buildEnosMqttCredentials(i);
        assert.match(built.password, /^[0-9A-F]+$/);
        const request = parseMqttConnect(built);
        assert.equal(request.scheme, "enos-sign");
        if (request.scheme !== "enos-sign") return;
        assert.equal(request.clientId, i.clientId);
        assert.equal(request.deviceKey, i.deviceKey);
        assert.equal(request.productKey, i.productKey);
        assert.equal(request.secureMode, i.secureMode);
        assert.equal(request.signMethod, i.signMethod);
        assert.equal(request.timestamp, String(i.timestamp));
        verifyMqttConnect(request, i.secret, { now: i.timestamp + 14 * MINUTE });
      }),
      RUNS,
    );
  });

  it("changes the password when any input changes", () => {
    const field = fc.constantFrom("clientId", "productKey", "deviceKey", "secret", "timestamp", "signMethod");
    fc.assert(
      fc.property(input, field, name, timestamp, (i, key, other, otherTime) => {
        const changed: EnosMqttInput =
          key === "timestamp"
            ? { ...i, timestamp: otherTime }
            : key === "signMethod"
              ? { ...i, signMethod: i.signMethod === "sha1" ? "md5" : "sha1" }
              : { ...i, [key]: other };
        fc.pre(changed[key] !== i[key]);
        assert.notEqual(buildEnosMqttCredentials(changed).password, buildEnosMqttCredentials(i).password);
      }),
      RUNS,
    );
  });

  it("rejects a tampered password, a wrong secret and a timestamp outside the window", () => {
    fc.assert(
      fc.property(input, fc.nat(), (i, position) => {
        const built = buildEnosMqttCredentials(i);
        const at = position % built.password.length;
        const flipped = built.password[at] === "0" ? "1" : "0";
        const tampered = built.password.slice(0, at) + flipped + built.password.slice(at + 1);
        const now = { now: i.timestamp };
        throwsCredential(
          () => verifyMqttConnect(parseMqttConnect({ ...built, password: tampered }), i.secret, now),
          "BAD_SIGNATURE",
          "password",
        );
        throwsCredential(
          () => verifyMqttConnect(parseMqttConnect(built), `${i.secret}x`, now),
          "BAD_SIGNATURE",
          "password",
        );
        throwsCredential(
          () => verifyMqttConnect(parseMqttConnect(built), i.secret, { now: i.timestamp + 16 * MINUTE }),
          "STALE_TIMESTAMP",
          "timestamp",
        );
        throwsCredential(
          () => verifyMqttConnect(parseMqttConnect(built), i.secret, { now: i.timestamp - 16 * MINUTE }),
          "STALE_TIMESTAMP",
          "timestamp",
        );
      }),
      { numRuns: 60 },
    );
  });

  it("rejects a timestamp changed after signing as a bad signature", () => {
    const built = buildEnosMqttCredentials({
      productKey: "pk",
      deviceKey: "dk",
      secret: "s",
      timestamp: 1_000_000,
    });
    const clientId = built.clientId.replace("timestamp=1000000", "timestamp=1000001");
    throwsCredential(
      () => verifyMqttConnect(parseMqttConnect({ ...built, clientId }), "s", { now: 1_000_000 }),
      "BAD_SIGNATURE",
      "password",
    );
  });

  it("uses the device key as client id and sha256 / secure mode 2 by default", () => {
    const built = buildEnosMqttCredentials({ productKey: "pk", deviceKey: "dk", secret: "s", timestamp: 5 });
    assert.equal(built.clientId, "dk|securemode=2,signmethod=sha256,timestamp=5|");
    assert.equal(built.password.length, 64);
  });

  it("rejects bad build inputs naming the argument", () => {
    const base = { productKey: "pk", deviceKey: "dk", secret: "s", timestamp: 1 };
    throwsCredential(
      () => buildEnosMqttCredentials({ ...base, deviceKey: "a&b" }),
      "INVALID_INPUT",
      "deviceKey",
    );
    throwsCredential(
      () => buildEnosMqttCredentials({ ...base, clientId: "a|b" }),
      "INVALID_INPUT",
      "clientId",
    );
    throwsCredential(
      () => buildEnosMqttCredentials({ ...base, timestamp: -1 }),
      "INVALID_INPUT",
      "timestamp",
    );
    throwsCredential(
      () => buildEnosMqttCredentials({ ...base, timestamp: 1.5 }),
      "INVALID_INPUT",
      "timestamp",
    );
    throwsCredential(
      () => buildEnosMqttCredentials({ ...base, signMethod: "hmacsha1" as "sha1" }),
      "INVALID_INPUT",
      "signMethod",
    );
    throwsCredential(() => buildEnosMqttCredentials({ ...base, secret: "" }), "INVALID_INPUT", "secret");
  });
});
