import assert from "node:assert/strict";
import { createCipheriv, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  LEGACY_KEY_ID,
  openSealedSecret,
  openSecret,
  type RegistryKeys,
  SealedSecretError,
  sealedKeyId,
  sealSecret,
} from "#core/registry/sealed-secret.ts";

const keyring = (currentKeyId: string, entries: [string, Buffer][]): RegistryKeys => ({
  currentKeyId,
  keys: new Map(entries),
});

/** A value in the legacy v1 format, sealed the way the first release did (AAD: the serial). */
function sealV1(secret: string, key: Buffer, serial: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(serial, "utf8"));
  const body = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return ["v1", iv, body, cipher.getAuthTag()]
    .map((p) => (typeof p === "string" ? p : p.toString("base64url")))
    .join(".");
}

function withTag(sealed: string, tag: (tag: Buffer) => Buffer): string {
  const parts = sealed.split(".");
  parts[parts.length - 1] = tag(Buffer.from(parts.at(-1)!, "base64url")).toString("base64url");
  return parts.join(".");
}

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SealedSecretError, String(error));
    return error.reason;
  }
  assert.fail("expected the sealed secret to be refused");
}

describe("sealed device secrets", () => {
  const legacyKey = randomBytes(32);
  const newKey = randomBytes(32);
  const keys = keyring("k2", [
    [LEGACY_KEY_ID, legacyKey],
    ["k2", newKey],
  ]);

  it("round-trips any secret under the current key, names that key, and never stores the secret in clear", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 200 }),
        fc.string({ minLength: 1, maxLength: 64 }),
        (secret, serial) => {
          const sealed = sealSecret(secret, keys, serial);
          assert.match(sealed, /^v2\.k2\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{22}$/);
          assert.equal(sealedKeyId(sealed), "k2");
          assert.equal(openSecret(sealed, keys, serial), secret);
          if (secret.length >= 4) assert.ok(!sealed.includes(secret));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("still opens legacy v1 values with the legacy key", () => {
    const v1 = sealV1("device-secret-123456", legacyKey, "SN-1");
    assert.equal(sealedKeyId(v1), LEGACY_KEY_ID);
    assert.equal(openSecret(v1, keys, "SN-1"), "device-secret-123456");
    assert.equal(
      reason(() => openSecret(v1, keyring("k2", [["k2", newKey]]), "SN-1")),
      "unknown-key",
    );
  });

  it("refuses a truncated or extended GCM tag (v1 and v2), which Node accepts without authTagLength", () => {
    const v1 = sealV1("device-secret-123456", legacyKey, "SN-1");
    const v2 = sealSecret("device-secret-123456", keys, "SN-1");
    for (const sealed of [v1, v2]) {
      for (const length of [4, 8, 12, 15]) {
        const truncated = withTag(sealed, (tag) => tag.subarray(0, length));
        assert.equal(
          reason(() => openSecret(truncated, keys, "SN-1")),
          "malformed",
          `tag of ${length} bytes`,
        );
      }
      const longer = withTag(sealed, (tag) => Buffer.concat([tag, Buffer.of(0)]));
      assert.equal(
        reason(() => openSecret(longer, keys, "SN-1")),
        "malformed",
      );
    }
  });

  it("refuses a seal moved to another serial, a wrong key, a relabelled key id, or a tampered value", () => {
    const sealed = sealSecret("device-secret-123456", keys, "SN-1");
    assert.equal(
      reason(() => openSecret(sealed, keys, "SN-2")),
      "not-authentic",
    );
    assert.equal(
      reason(() => openSecret(sealed, keyring("k2", [["k2", randomBytes(32)]]), "SN-1")),
      "not-authentic",
    );
    const relabelled = sealed.replace(/^v2\.k2\./, "v2.k3.");
    assert.equal(
      reason(() => openSecret(relabelled, keyring("k3", [["k3", newKey]]), "SN-1")),
      "not-authentic",
      "the key id is authenticated",
    );
    const parts = sealed.split(".");
    parts[3] = Buffer.from("tampered").toString("base64url");
    assert.equal(
      reason(() => openSecret(parts.join("."), keys, "SN-1")),
      "not-authentic",
    );
    for (const garbage of [
      "garbage",
      "v2.k2.a.b",
      "v3.k2.a.b.c",
      "v2.k.2.a.b.c",
      `v2.k2.${parts[2]}=.x.${parts[4]}`,
    ]) {
      assert.equal(
        reason(() => openSecret(garbage, keys, "SN-1")),
        "malformed",
        garbage,
      );
    }
  });

  it("openSealedSecret reads the keys past the cache once when a value names a key it does not know yet", async () => {
    const sealed = sealSecret("device-secret-123456", keys, "SN-1");
    const calls: (boolean | undefined)[] = [];
    const stale = keyring(LEGACY_KEY_ID, [[LEGACY_KEY_ID, legacyKey]]);
    const store = {
      getRegistryKeys: async (options?: { fresh?: boolean }) => {
        calls.push(options?.fresh);
        return options?.fresh ? keys : stale;
      },
    };
    assert.equal(await openSealedSecret(sealed, store, "SN-1"), "device-secret-123456");
    assert.deepEqual(calls, [undefined, true]);
    calls.length = 0;
    assert.equal(
      await openSealedSecret(sealV1("s-123456789012345", legacyKey, "SN-2"), store, "SN-2"),
      "s-123456789012345",
    );
    assert.deepEqual(calls, [undefined], "a known key needs no fresh read");
  });
});
