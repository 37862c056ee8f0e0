import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  buildAliyunMqttCredentials,
  buildEnosMqttCredentials,
  CredentialError,
  decodePassword,
  parseClientId,
  parseMqttConnect,
  parseUsername,
  verifyMqttConnect,
} from "#credentials/index.ts";
import { anyString, onlyCredentialErrors, throwsCredential, tokenSoup } from "./arbitraries.ts";

const VECTOR = {
  clientId: "12345|securemode=2,signmethod=hmacsha1,timestamp=789|",
  username: "device&pk",
  password: "FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
};

describe("clientId", () => {
  it("splits the id from the |k=v| block", () => {
    const parsed = parseClientId("a.b|securemode=2,signmethod=hmacsha1,_v=sdk-c-3.0.1|");
    assert.equal(parsed.id, "a.b");
    assert.equal(parsed.hasBlock, true);
    assert.deepEqual({ ...parsed.params }, { securemode: "2", signmethod: "hmacsha1", _v: "sdk-c-3.0.1" });
    assert.deepEqual(parseClientId("plain"), { id: "plain", params: Object.create(null), hasBlock: false });
  });

  it("keeps parameter names like __proto__ as plain data", () => {
    const parsed = parseClientId("a|__proto__=x,constructor=y|");
    assert.equal(Object.getOwnPropertyDescriptor(parsed.params, "__proto__")?.value, "x");
    assert.equal(Object.getPrototypeOf(parsed.params), null);
    assert.equal(parseClientId("a|x=1|").params.toString, undefined);
  });

  it("rejects malformed blocks", () => {
    for (const bad of [
      "a|",
      "a|b=1",
      "a|b=1|c|",
      "a|b|",
      "a|=1|",
      "a|b=|",
      "a|b=1,,c=2|",
      "a|b=1=2|",
      "a|1b=2|",
    ]) {
      throwsCredential(() => parseClientId(bad), "MALFORMED_CLIENT_ID", "clientId");
    }
    throwsCredential(() => parseClientId("|b=1|"), "EMPTY_VALUE", "clientId");
    throwsCredential(() => parseClientId(""), "EMPTY_VALUE", "clientId");
    throwsCredential(() => parseClientId("a|b=1,b=2|"), "DUPLICATE_PARAMETER", "b");
    throwsCredential(() => parseClientId("a\u0000|b=1|"), "MALFORMED_CLIENT_ID", "clientId");
    throwsCredential(() => parseClientId("x".repeat(2000)), "MALFORMED_CLIENT_ID", "clientId");
  });
});

describe("username", () => {
  it("strips the custom-authorizer query AWS IoT clients append", () => {
    const parsed = parseUsername(
      "device&pk?x-amz-customauthorizer-name=onramp&x-amz-customauthorizer-signature=abc",
    );
    assert.equal(parsed.first, "device");
    assert.equal(parsed.second, "pk");
    assert.equal(parsed.query, "x-amz-customauthorizer-name=onramp&x-amz-customauthorizer-signature=abc");
    assert.equal(parseUsername("device&pk").query, undefined);
  });

  it("rejects anything but one '&' between two non-empty parts", () => {
    for (const bad of ["devicepk", "a&b&c", "a&b&c?x=1", "?x=1&y=2"])
      throwsCredential(() => parseUsername(bad), "MALFORMED_USERNAME", "username");
    for (const bad of ["&pk", "device&", "&", "a&?x=1"])
      throwsCredential(() => parseUsername(bad), "EMPTY_VALUE", "username");
  });
});

describe("password", () => {
  it("decodes the base64 a custom authorizer receives", () => {
    assert.equal(decodePassword(Buffer.from(VECTOR.password).toString("base64"), "base64"), VECTOR.password);
    assert.equal(decodePassword("dG9rZW4=", "base64"), "token");
  });

  it("rejects bad base64 and non-UTF-8 bytes", () => {
    for (const bad of ["", "abc", "!!!!", "dG9rZW4", "dG9rZW5=", "dG9r ZW4="]) {
      throwsCredential(() => decodePassword(bad, "base64"), "MALFORMED_PASSWORD", "password");
    }
    throwsCredential(
      () => decodePassword(Buffer.from([0xff, 0xfe]).toString("base64"), "base64"),
      "MALFORMED_PASSWORD",
    );
    throwsCredential(() => decodePassword(undefined), "MALFORMED_PASSWORD", "password");
  });
});

describe("parseMqttConnect", () => {
  it("tells the schemes apart", () => {
    assert.equal(parseMqttConnect(VECTOR).scheme, "aliyun-sign");
    const enos = buildEnosMqttCredentials({ productKey: "p", deviceKey: "d", secret: "s", timestamp: 1 });
    assert.equal(parseMqttConnect(enos).scheme, "enos-sign");
    assert.equal(
      parseMqttConnect({ clientId: "c|securemode=-2,authType=connwl|", username: "d&p", password: "t" })
        .scheme,
      "aliyun-connwl",
    );
  });

  it("accepts the authorizer's base64 password and username suffix", () => {
    const request = parseMqttConnect(
      {
        clientId: VECTOR.clientId,
        username: `${VECTOR.username}?x-amz-customauthorizer-name=onramp`,
        password: Buffer.from(VECTOR.password).toString("base64"),
      },
      { passwordEncoding: "base64" },
    );
    assert.equal(request.scheme, "aliyun-sign");
    if (request.scheme !== "aliyun-sign") return;
    assert.equal(request.deviceName, "device");
    verifyMqttConnect(request, "secret", { now: 789 });
  });

  it("accepts sign methods in any case", () => {
    const request = parseMqttConnect({
      ...VECTOR,
      clientId: VECTOR.clientId.replace("hmacsha1", "HmacSHA1"),
    });
    assert.equal(request.scheme === "aliyun-sign" && request.signMethod, "hmacsha1");
    verifyMqttConnect(request, "secret", { now: 789 });
  });

  it("names the wrong field", () => {
    const cases: Array<[Partial<typeof VECTOR>, string, string]> = [
      [{ clientId: "12345" }, "MALFORMED_CLIENT_ID", "clientId"],
      [{ clientId: "12345|securemode=2,timestamp=789|" }, "MISSING_PARAMETER", "signmethod"],
      [{ clientId: "12345|securemode=2,signmethod=hmacsha512|" }, "UNSUPPORTED_SIGN_METHOD", "signmethod"],
      [{ clientId: "12345|signmethod=hmacsha1|" }, "MISSING_PARAMETER", "securemode"],
      [{ clientId: "12345|securemode=8,signmethod=hmacsha1|" }, "UNSUPPORTED_SECURE_MODE", "securemode"],
      [
        { clientId: "12345|securemode=2,signmethod=hmacsha1,timestamp=soon|" },
        "MALFORMED_TIMESTAMP",
        "timestamp",
      ],
      [
        { clientId: "12345|securemode=2,signmethod=hmacsha1,timestamp=-1|" },
        "MALFORMED_TIMESTAMP",
        "timestamp",
      ],
      [{ username: "devicepk" }, "MALFORMED_USERNAME", "username"],
      [{ password: "FAFD" }, "MALFORMED_PASSWORD", "password"],
      [{ password: `${VECTOR.password.slice(0, -1)}G` }, "MALFORMED_PASSWORD", "password"],
      [{ clientId: "12345|securemode=2,signmethod=sha256,timestamp=789|" }, "MALFORMED_PASSWORD", "password"],
    ];
    for (const [change, code, field] of cases) {
      throwsCredential(() => parseMqttConnect({ ...VECTOR, ...change }), code, field);
    }
    throwsCredential(
      () => parseMqttConnect({ ...VECTOR, password: undefined }),
      "MALFORMED_PASSWORD",
      "password",
    );
    throwsCredential(
      () => parseMqttConnect({ ...VECTOR, username: undefined }),
      "MALFORMED_USERNAME",
      "username",
    );
  });

  it("limits schemes on request", () => {
    throwsCredential(
      () => parseMqttConnect(VECTOR, { schemes: ["enos-sign"] }),
      "SCHEME_NOT_ALLOWED",
      "clientId",
    );
    assert.equal(parseMqttConnect(VECTOR, { schemes: ["aliyun-sign"] }).scheme, "aliyun-sign");
  });

  it("throws only CredentialError on arbitrary fields, raw or base64", () => {
    const field = fc.oneof(anyString, tokenSoup, fc.constant(VECTOR.clientId), fc.constant(VECTOR.password));
    fc.assert(
      fc.property(
        field,
        field,
        field,
        fc.constantFrom("raw" as const, "base64" as const),
        (clientId, username, password, enc) =>
          onlyCredentialErrors(() => {
            const request = parseMqttConnect({ clientId, username, password }, { passwordEncoding: enc });
            verifyMqttConnect(request, "secret", { now: 789 });
          }),
      ),
      { numRuns: 400 },
    );
    for (const input of [undefined, null, 5, "x", {}]) {
      onlyCredentialErrors(() => parseMqttConnect(input as never));
    }
  });

  it("fails closed on a request it did not parse", () => {
    const forged = { ...parseMqttConnect(VECTOR), scheme: "none" } as never;
    assert.throws(() => verifyMqttConnect(forged, "secret"), CredentialError);
  });

  it("never verifies a password signed for another device", () => {
    const a = buildAliyunMqttCredentials({
      productKey: "pk",
      deviceName: "a",
      deviceSecret: "s",
      timestamp: 1,
    });
    const b = buildAliyunMqttCredentials({
      productKey: "pk",
      deviceName: "b",
      deviceSecret: "s",
      timestamp: 1,
    });
    throwsCredential(
      () => verifyMqttConnect(parseMqttConnect({ ...b, password: a.password }), "s", { now: 1 }),
      "BAD_SIGNATURE",
      "password",
    );
  });
});
