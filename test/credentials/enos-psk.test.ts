import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  buildEnosPsk,
  ENOS_PSK_KEY_LENGTH,
  enosPskKey,
  formatEnosPskIdentity,
  parseEnosPskIdentity,
} from "#credentials/index.ts";
import {
  anyString,
  name,
  onlyCredentialErrors,
  RUNS,
  secret,
  throwsCredential,
  tokenSoup,
} from "./arbitraries.ts";

const identity = fc.record({
  productKey: name,
  deviceKey: name,
  secureMode: fc.constantFrom(2 as const, 3 as const),
  lifetime: fc.integer({ min: 30, max: 86_400 }),
});

describe("EnOS PSK", () => {
  it("parses a seed 000 identity", () => {
    assert.deepEqual(parseEnosPskIdentity("MuGsF6W4,15bBZlRknc,3,3600"), {
      productKey: "MuGsF6W4",
      deviceKey: "15bBZlRknc",
      secureMode: 3,
      lifetime: 3600,
    });
  });

  it("rejects malformed identities with typed errors", () => {
    throwsCredential(() => parseEnosPskIdentity("MuGsF6W4,15bBZlRknc,2"), "MALFORMED_IDENTITY", "identity");
    throwsCredential(() => parseEnosPskIdentity("a,b,2,3600,x"), "MALFORMED_IDENTITY", "identity");
    throwsCredential(() => parseEnosPskIdentity(""), "EMPTY_VALUE", "identity");
    throwsCredential(() => parseEnosPskIdentity(",b,2,3600"), "EMPTY_VALUE", "productKey");
    throwsCredential(() => parseEnosPskIdentity("a,,2,3600"), "EMPTY_VALUE", "deviceKey");
    throwsCredential(() => parseEnosPskIdentity("a,b,1,3600"), "UNSUPPORTED_SECURE_MODE", "securemode");
    throwsCredential(() => parseEnosPskIdentity("a,b,,3600"), "UNSUPPORTED_SECURE_MODE", "securemode");
    throwsCredential(() => parseEnosPskIdentity("a,b,2,29"), "LIFETIME_OUT_OF_RANGE", "lifetime");
    throwsCredential(() => parseEnosPskIdentity("a,b,2,86401"), "LIFETIME_OUT_OF_RANGE", "lifetime");
    for (const lifetime of ["", "36.5", "1e3", "+60", "0060", " 60", "sixty", "99999999999"]) {
      throwsCredential(() => parseEnosPskIdentity(`a,b,2,${lifetime}`), "MALFORMED_LIFETIME", "lifetime");
    }
    assert.equal(parseEnosPskIdentity("a,b,2,30").lifetime, 30);
    assert.equal(parseEnosPskIdentity("a,b,2,86400").lifetime, 86_400);
  });

  it("rejects bad build inputs naming the argument", () => {
    const base = { productKey: "pk", deviceKey: "dk", secureMode: 2 as const, lifetime: 60, secret: "s" };
    throwsCredential(() => buildEnosPsk({ ...base, productKey: "p,k" }), "INVALID_INPUT", "productKey");
    throwsCredential(() => buildEnosPsk({ ...base, deviceKey: "" }), "INVALID_INPUT", "deviceKey");
    throwsCredential(() => buildEnosPsk({ ...base, lifetime: 10 }), "INVALID_INPUT", "lifetime");
    throwsCredential(() => buildEnosPsk({ ...base, lifetime: 60.5 }), "INVALID_INPUT", "lifetime");
    throwsCredential(() => buildEnosPsk({ ...base, secret: "" }), "INVALID_INPUT", "secret");
    throwsCredential(() => buildEnosPsk({ ...base, secureMode: 4 as 2 }), "INVALID_INPUT", "securemode");
  });

  it("round-trips build -> parse", () => {
    fc.assert(
      fc.property(identity, secret, (parts, s) => {
        const psk = buildEnosPsk({ ...parts, secret: s });
        assert.deepEqual(parseEnosPskIdentity(psk.identity), { ...parts });
        assert.equal(formatEnosPskIdentity(parseEnosPskIdentity(psk.identity)), psk.identity);
      }),
      RUNS,
    );
  });

  it("always derives 16 bytes, SHA-256(secret)[8:24]", () => {
    fc.assert(
      fc.property(secret, (s) => {
        const key = enosPskKey(s);
        assert.equal(key.length, ENOS_PSK_KEY_LENGTH);
        assert.deepEqual(Buffer.from(key), createHash("sha256").update(s, "utf8").digest().subarray(8, 24));
      }),
      RUNS,
    );
  });

  it("gives different secrets different keys", () => {
    fc.assert(
      fc.property(secret, secret, (a, b) => {
        fc.pre(a !== b);
        assert.notDeepEqual(enosPskKey(a), enosPskKey(b));
      }),
      RUNS,
    );
  });

  it("throws only CredentialError on arbitrary identities", () => {
    fc.assert(
      fc.property(fc.oneof(anyString, tokenSoup), (text) =>
        onlyCredentialErrors(() => parseEnosPskIdentity(text)),
      ),
      RUNS,
    );
    for (const value of [undefined, null, 42, {}, []]) {
      throwsCredential(() => parseEnosPskIdentity(value), "MALFORMED_IDENTITY", "identity");
    }
  });
});
