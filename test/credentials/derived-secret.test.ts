import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DERIVED_SECRET_LENGTH, deriveDeviceSecret } from "#credentials/index.ts";
import { anyString, name, onlyCredentialErrors, RUNS, throwsCredential } from "./arbitraries.ts";

const groupKey = fc
  .uint8Array({ minLength: 16, maxLength: 64 })
  .map((b) => Buffer.from(b).toString("base64"));

describe("derived device secrets", () => {
  it("are always 32 bytes of base64", () => {
    fc.assert(
      fc.property(groupKey, name, (key, id) => {
        const derived = deriveDeviceSecret(key, id);
        assert.match(derived, /^[A-Za-z0-9+/]{43}=$/);
        assert.equal(Buffer.from(derived, "base64").length, DERIVED_SECRET_LENGTH);
      }),
      RUNS,
    );
  });

  it("differ per registration id and per group key", () => {
    fc.assert(
      fc.property(groupKey, groupKey, name, name, (k1, k2, id1, id2) => {
        if (id1 !== id2) assert.notEqual(deriveDeviceSecret(k1, id1), deriveDeviceSecret(k1, id2));
        if (k1 !== k2) assert.notEqual(deriveDeviceSecret(k1, id1), deriveDeviceSecret(k2, id1));
      }),
      RUNS,
    );
  });

  it("reject a group key that is not base64", () => {
    for (const bad of ["", "abc", "not base64!", "r0mx====", "QR==", "YWJj\n", "YW Jj"]) {
      throwsCredential(() => deriveDeviceSecret(bad, "pytest"), "MALFORMED_GROUP_KEY", "groupKey");
    }
    throwsCredential(() => deriveDeviceSecret("YWJj", ""), "INVALID_INPUT", "registrationId");
  });

  it("throw only CredentialError on arbitrary input", () => {
    fc.assert(
      fc.property(anyString, anyString, (key, id) => onlyCredentialErrors(() => deriveDeviceSecret(key, id))),
      RUNS,
    );
  });
});
