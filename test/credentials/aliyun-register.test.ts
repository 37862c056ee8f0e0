import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ALIYUN_REGISTER_PATH,
  ALIYUN_SIGN_METHODS,
  type AliyunRegisterInput,
  buildAliyunConnwlCredentials,
  buildAliyunRegisterCredentials,
  buildAliyunRegisterForm,
  parseAliyunRegisterForm,
  parseMqttConnect,
  verifyAliyunRegisterForm,
  verifyMqttConnect,
} from "#credentials/index.ts";
import {
  anyString,
  hasControl,
  name,
  onlyCredentialErrors,
  RUNS,
  random,
  secret,
  throwsCredential,
  tokenSoup,
} from "./arbitraries.ts";

const input = fc
  .record({
    authType: fc.constantFrom("register" as const, "regnwl" as const),
    clientId: name,
    productKey: name,
    deviceName: name,
    productSecret: secret,
    random,
    secureMode: fc.constantFrom(2 as const, -2 as const),
    signMethod: fc.constantFrom(...ALIYUN_SIGN_METHODS),
    hexCase: fc.constantFrom("upper" as const, "lower" as const),
  })
  .map((r): AliyunRegisterInput => ({ ...r }));

const flipHex = (hex: string, position: number): string => {
  const at = position % hex.length;
  return hex.slice(0, at) + (hex[at] === "0" ? "1" : "0") + hex.slice(at + 1);
};

describe("Alibaba dynamic registration over MQTT (register / regnwl)", () => {
  it("round-trips build -> parse -> verify", () => {
    fc.assert(
      fc.property(input, (i) => {
        const built = buildAliyunRegisterCredentials(i);
        const request = parseMqttConnect(built);
        assert.equal(request.scheme, `aliyun-${i.authType}`);
        if (request.scheme !== "aliyun-register" && request.scheme !== "aliyun-regnwl") return;
        assert.equal(request.clientId, i.clientId);
        assert.equal(request.deviceName, i.deviceName);
        assert.equal(request.productKey, i.productKey);
        assert.equal(request.random, i.random);
        assert.equal(request.secureMode, i.secureMode);
        assert.equal(request.signMethod, i.signMethod);
        verifyMqttConnect(request, i.productSecret);
      }),
      RUNS,
    );
  });

  it("changes the password when any signed input changes, but not with the client id", () => {
    const field = fc.constantFrom("productKey", "deviceName", "productSecret", "random");
    fc.assert(
      fc.property(input, field, random, (i, key, other) => {
        const changed = { ...i, [key]: other };
        fc.pre(changed[key] !== i[key]);
        assert.notEqual(
          buildAliyunRegisterCredentials(changed).password,
          buildAliyunRegisterCredentials(i).password,
        );
      }),
      RUNS,
    );
    const i = {
      authType: "register",
      productKey: "pk",
      deviceName: "dn",
      productSecret: "s",
      random: "1",
    } as const;
    assert.equal(
      buildAliyunRegisterCredentials({ ...i, clientId: "a" }).password,
      buildAliyunRegisterCredentials({ ...i, clientId: "b" }).password,
    );
  });

  it("rejects a tampered password or a wrong product secret", () => {
    fc.assert(
      fc.property(input, fc.nat(), (i, position) => {
        const built = buildAliyunRegisterCredentials(i);
        const tampered = { ...built, password: flipHex(built.password, position) };
        throwsCredential(
          () => verifyMqttConnect(parseMqttConnect(tampered), i.productSecret),
          "BAD_SIGNATURE",
          "password",
        );
        throwsCredential(
          () => verifyMqttConnect(parseMqttConnect(built), `${i.productSecret}!`),
          "BAD_SIGNATURE",
        );
      }),
      { numRuns: 60 },
    );
  });

  it("requires random, signmethod and securemode 2 or -2", () => {
    const username = "dn&pk";
    const password = "0".repeat(40);
    throwsCredential(
      () =>
        parseMqttConnect({
          clientId: "c|securemode=2,authType=register,signmethod=hmacsha1|",
          username,
          password,
        }),
      "MISSING_PARAMETER",
      "random",
    );
    throwsCredential(
      () => parseMqttConnect({ clientId: "c|securemode=2,authType=register,random=1|", username, password }),
      "MISSING_PARAMETER",
      "signmethod",
    );
    throwsCredential(
      () =>
        parseMqttConnect({
          clientId: "c|securemode=3,authType=regnwl,random=1,signmethod=hmacsha1|",
          username,
          password,
        }),
      "UNSUPPORTED_SECURE_MODE",
      "securemode",
    );
    throwsCredential(
      () =>
        parseMqttConnect({
          clientId: "c|securemode=2,authType=regnwl,random=1,signmethod=sha1|",
          username,
          password,
        }),
      "UNSUPPORTED_SIGN_METHOD",
      "signmethod",
    );
    throwsCredential(
      () => parseMqttConnect({ clientId: "c|securemode=2,authType=login|", username, password }),
      "UNSUPPORTED_AUTH_TYPE",
      "authType",
    );
  });
});

describe("Alibaba connwl (connect with the regnwl deviceToken)", () => {
  it("builds the seed 002 shape", () => {
    assert.deepEqual(
      buildAliyunConnwlCredentials({
        clientId: "abc123",
        deviceName: "device1",
        productKey: "al123456789",
        deviceToken: "tok",
      }),
      { clientId: "abc123|securemode=-2,authType=connwl|", username: "device1&al123456789", password: "tok" },
    );
  });

  it("round-trips build -> parse -> verify and rejects another token", () => {
    fc.assert(
      fc.property(
        name,
        name,
        name,
        secret,
        secret,
        (clientId, deviceName, productKey, deviceToken, other) => {
          fc.pre(!hasControl(deviceToken));
          const built = buildAliyunConnwlCredentials({ clientId, deviceName, productKey, deviceToken });
          const request = parseMqttConnect(built);
          assert.equal(request.scheme, "aliyun-connwl");
          assert.equal(request.clientId, clientId);
          verifyMqttConnect(request, deviceToken);
          if (other !== deviceToken)
            throwsCredential(() => verifyMqttConnect(request, other), "BAD_SIGNATURE", "password");
        },
      ),
      RUNS,
    );
  });

  it("requires securemode -2", () => {
    throwsCredential(
      () => parseMqttConnect({ clientId: "c|securemode=2,authType=connwl|", username: "d&p", password: "t" }),
      "UNSUPPORTED_SECURE_MODE",
      "securemode",
    );
  });
});

describe("Alibaba registration over HTTPS", () => {
  it("builds the seed 002 sign into a form", () => {
    const form = buildAliyunRegisterForm({
      productKey: "al123456789",
      deviceName: "device1",
      productSecret: "h1nQFYPZS0mW2352",
      random: "123",
      signMethod: "hmacsha1",
      hexCase: "lower",
    });
    assert.equal(form.path, ALIYUN_REGISTER_PATH);
    assert.equal(form.method, "POST");
    assert.equal(form.contentType, "application/x-www-form-urlencoded");
    assert.equal(
      form.body,
      "productKey=al123456789&deviceName=device1&random=123&sign=d6146f9ad1209149bfaf56341f267283e3e2b4ad&signMethod=hmacsha1",
    );
    const parsed = parseAliyunRegisterForm(form.body);
    assert.deepEqual(parsed, form.fields);
    verifyAliyunRegisterForm(parsed, "h1nQFYPZS0mW2352");
  });

  it("round-trips any names through form encoding", () => {
    const text = fc.string({ unit: "grapheme", minLength: 1, maxLength: 24 });
    fc.assert(
      fc.property(text, text, text, secret, fc.constantFrom(...ALIYUN_SIGN_METHODS), (pk, dn, r, s, m) => {
        fc.pre(![pk, dn, r].some(hasControl));
        const form = buildAliyunRegisterForm({
          productKey: pk,
          deviceName: dn,
          random: r,
          productSecret: s,
          signMethod: m,
        });
        const parsed = parseAliyunRegisterForm(form.body);
        assert.deepEqual(parsed, form.fields);
        verifyAliyunRegisterForm(parsed, s);
        throwsCredential(
          () => verifyAliyunRegisterForm({ ...parsed, random: `${r}0` }, s),
          "BAD_SIGNATURE",
          "sign",
        );
      }),
      RUNS,
    );
  });

  it("rejects missing, duplicated and malformed fields", () => {
    const body =
      "productKey=pk&deviceName=dn&random=1&sign=d6146f9ad1209149bfaf56341f267283e3e2b4ad&signMethod=hmacsha1";
    throwsCredential(
      () => parseAliyunRegisterForm(body.replace("random=1&", "")),
      "MISSING_PARAMETER",
      "random",
    );
    throwsCredential(() => parseAliyunRegisterForm(`${body}&random=2`), "DUPLICATE_PARAMETER", "random");
    throwsCredential(
      () => parseAliyunRegisterForm(body.replace("hmacsha1", "hmacsha512")),
      "UNSUPPORTED_SIGN_METHOD",
      "signMethod",
    );
    throwsCredential(
      () => parseAliyunRegisterForm(body.replace("sign=d6", "sign=")),
      "MALFORMED_FORM",
      "sign",
    );
    throwsCredential(
      () => parseAliyunRegisterForm(body.replace("deviceName=dn", "deviceName=")),
      "EMPTY_VALUE",
      "deviceName",
    );
    throwsCredential(
      () => parseAliyunRegisterForm(body.replace("dn", "d%00n")),
      "MALFORMED_FORM",
      "deviceName",
    );
    assert.equal(parseAliyunRegisterForm(`${body}&extra=1`).deviceName, "dn");
    assert.equal(parseAliyunRegisterForm(body.replace("hmacsha1", "HmacSHA1")).signMethod, "hmacsha1");
  });

  it("throws only CredentialError on arbitrary bodies", () => {
    fc.assert(
      fc.property(fc.oneof(anyString, tokenSoup), (body) =>
        onlyCredentialErrors(() => parseAliyunRegisterForm(body)),
      ),
      RUNS,
    );
  });
});
