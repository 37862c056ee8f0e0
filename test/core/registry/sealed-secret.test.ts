import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { openSecret, sealSecret } from "#core/registry/sealed-secret.ts";

describe("sealed device secrets", () => {
  const key = randomBytes(32);

  it("round-trips any secret and never stores it in clear", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 200 }),
        fc.string({ minLength: 1, maxLength: 64 }),
        (secret, serial) => {
          const sealed = sealSecret(secret, key, serial);
          assert.equal(openSecret(sealed, key, serial), secret);
          if (secret.length >= 4) assert.ok(!sealed.includes(secret));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses a seal moved to another serial, a wrong key, or a tampered value", () => {
    const sealed = sealSecret("device-secret-123456", key, "SN-1");
    assert.throws(() => openSecret(sealed, key, "SN-2"));
    assert.throws(() => openSecret(sealed, randomBytes(32), "SN-1"));
    const parts = sealed.split(".");
    parts[2] = Buffer.from("tampered").toString("base64url");
    assert.throws(() => openSecret(parts.join("."), key, "SN-1"));
    assert.throws(() => openSecret("garbage", key, "SN-1"));
  });
});
