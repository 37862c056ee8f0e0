import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  canonicalString,
  constantTimeEqual,
  hashHex,
  hmacHex,
  signCanonical,
  sortedSignContent,
  verifyCanonical,
} from "#credentials/index.ts";
import { anyString, RUNS } from "./arbitraries.ts";

describe("sign helpers", () => {
  it("hmacHex matches RFC 4231 test case 2", () => {
    assert.equal(
      hmacHex("sha256", "Jefe", "what do ya want for nothing?"),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
    assert.equal(
      hmacHex("md5", "Jefe", "what do ya want for nothing?", "upper"),
      "750C783E6AB0B503EAA86E310A5DB738",
    );
  });

  it("hashHex is a plain digest", () => {
    assert.equal(hashHex("sha1", "abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  });

  it("sortedSignContent sorts names and skips undefined values", () => {
    assert.equal(
      sortedSignContent({
        timestamp: "789",
        productKey: "pk",
        clientId: "12345",
        deviceName: "device",
        x: undefined,
      }),
      "clientId12345deviceNamedeviceproductKeypktimestamp789",
    );
  });

  it("signCanonical is lowercase hex HMAC-SHA256 over the canonical string", () => {
    const canonical = canonicalString(["POST", "/vend", "1700000000000", "abc"]);
    assert.equal(canonical, "POST\n/vend\n1700000000000\nabc");
    const expected = createHmac("sha256", "k").update(canonical).digest("hex");
    assert.equal(signCanonical("k", canonical), expected);
    assert.ok(verifyCanonical("k", canonical, expected.toUpperCase()));
    assert.ok(!verifyCanonical("k", canonical, expected.slice(1)));
    assert.ok(!verifyCanonical("k2", canonical, expected));
  });

  it("constantTimeEqual agrees with === for any strings, lone surrogates included", () => {
    fc.assert(
      fc.property(anyString, anyString, (a, b) => {
        assert.equal(constantTimeEqual(a, b), a === b);
        assert.equal(constantTimeEqual(a, a), true);
      }),
      RUNS,
    );
    assert.equal(constantTimeEqual("\ud800", "\udfff"), false);
    assert.equal(constantTimeEqual("abc", "abcd"), false);
    assert.equal(constantTimeEqual(undefined as never, "x"), false);
  });
});
