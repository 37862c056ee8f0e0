import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * Per-device secrets are stored sealed with AES-256-GCM under a registry key, bound to the serial
 * number (additional authenticated data) so a sealed value cannot be moved to another row.
 *
 * Format: `v2.<key id>.<iv b64url>.<ciphertext b64url>.<tag b64url>`, the AAD being
 * `v2.<key id>.<serial>`. The key id names the registry key it was sealed under, so the key can be
 * rotated (`onramp registry rotate-key`): rows are re-sealed under a new key one by one while the
 * old key stays readable. The legacy `v1.<iv>.<ciphertext>.<tag>` (AAD: the serial) carries no
 * key id; it was sealed under the first registry key, known as LEGACY_KEY_ID.
 *
 * The IV must be 12 bytes and the tag exactly 16: Node's setAuthTag accepts tags as short as
 * 4 bytes unless authTagLength is set, and a short tag is a forgery that only needs 2^32 tries.
 */
export const SEALED_SECRET_VERSION = "v2";
export const LEGACY_KEY_ID = "legacy";

/** Registry keys by id, and the id of the key new seals use. */
export type RegistryKeys = { currentKeyId: string; keys: ReadonlyMap<string, Buffer> };

/** Key ids: what may sit between the dots of a sealed value. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** A sealed value that cannot be opened: malformed, tampered, another serial, or an unknown key. */
export class SealedSecretError extends Error {
  constructor(
    readonly reason: "malformed" | "unknown-key" | "not-authentic",
    message: string,
  ) {
    super(message);
    this.name = "SealedSecretError";
  }
}

/** Seals a secret for a serial under the current registry key (or `keyId`). */
export function sealSecret(secret: string, keys: RegistryKeys, serialNumber: string, keyId?: string): string {
  const kid = keyId ?? keys.currentKeyId;
  const key = keyFor(keys, kid);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(SEALED_SECRET_VERSION, kid, serialNumber));
  const body = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return [SEALED_SECRET_VERSION, kid, b64(iv), b64(body), b64(cipher.getAuthTag())].join(".");
}

/** Opens a sealed secret; throws SealedSecretError if it cannot (see the class). */
export function openSecret(sealed: string, keys: RegistryKeys, serialNumber: string): string {
  const parsed = parseSealed(sealed);
  const key = keyFor(keys, parsed.keyId);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, parsed.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(parsed.version, parsed.keyId, serialNumber));
    decipher.setAuthTag(parsed.tag);
    return Buffer.concat([decipher.update(parsed.body), decipher.final()]).toString("utf8");
  } catch {
    throw new SealedSecretError("not-authentic", "The sealed secret does not authenticate for this serial.");
  }
}

/** The id of the key a sealed value was sealed under (LEGACY_KEY_ID for v1); throws if malformed. */
export function sealedKeyId(sealed: string): string {
  return parseSealed(sealed).keyId;
}

/**
 * Opens a sealed secret with the store's registry keys. A value sealed under a key this copy of
 * the keys does not know yet (a rotation made it since they were cached) is retried once with
 * keys read past the cache.
 */
export async function openSealedSecret(
  sealed: string,
  secrets: { getRegistryKeys(options?: { fresh?: boolean }): Promise<RegistryKeys> },
  serialNumber: string,
): Promise<string> {
  const keyId = sealedKeyId(sealed);
  let keys = await secrets.getRegistryKeys();
  if (!keys.keys.has(keyId)) keys = await secrets.getRegistryKeys({ fresh: true });
  return openSecret(sealed, keys, serialNumber);
}

type ParsedSealed = { version: string; keyId: string; iv: Buffer; body: Buffer; tag: Buffer };

function parseSealed(sealed: string): ParsedSealed {
  const parts = typeof sealed === "string" ? sealed.split(".") : [];
  const [version] = parts;
  const fields =
    version === "v1" && parts.length === 4
      ? { keyId: LEGACY_KEY_ID, iv: parts[1], body: parts[2], tag: parts[3] }
      : version === SEALED_SECRET_VERSION && parts.length === 5
        ? { keyId: parts[1], iv: parts[2], body: parts[3], tag: parts[4] }
        : undefined;
  if (!fields || !version || !fields.keyId || !KEY_ID_PATTERN.test(fields.keyId)) {
    throw new SealedSecretError("malformed", "The sealed secret is malformed.");
  }
  const iv = unb64(fields.iv);
  const body = unb64(fields.body);
  const tag = unb64(fields.tag);
  if (iv?.length !== IV_BYTES || body === undefined || tag?.length !== TAG_BYTES) {
    throw new SealedSecretError("malformed", "The sealed secret is malformed (IV, body or tag length).");
  }
  return { version, keyId: fields.keyId, iv, body, tag };
}

function keyFor(keys: RegistryKeys, keyId: string): Buffer {
  const key = keys.keys.get(keyId);
  if (!key) throw new SealedSecretError("unknown-key", `No registry key with id ${keyId}.`);
  if (key.length !== KEY_BYTES)
    throw new SealedSecretError("unknown-key", `Registry key ${keyId} is not 32 bytes.`);
  return key;
}

/** v1 binds the serial only (as it always did); v2 binds version, key id and serial. */
function aad(version: string, keyId: string, serialNumber: string): Buffer {
  return Buffer.from(version === "v1" ? serialNumber : `${version}.${keyId}.${serialNumber}`, "utf8");
}

function b64(bytes: Buffer): string {
  return bytes.toString("base64url");
}

/** Strict base64url: undefined for anything Buffer.from would silently skip or pad. */
function unb64(text: string | undefined): Buffer | undefined {
  if (text === undefined || !/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  return bytes.toString("base64url") === text ? bytes : undefined;
}
