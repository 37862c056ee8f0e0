import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * Per-device secrets are stored sealed with AES-256-GCM under the registry key, bound to the
 * serial number (additional authenticated data) so a sealed value cannot be moved to another row.
 * Format: `v1.<iv b64url>.<ciphertext b64url>.<tag b64url>`.
 */
export function sealSecret(secret: string, key: Buffer, serialNumber: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(serialNumber, "utf8"));
  const body = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return ["v1", iv, body, cipher.getAuthTag()]
    .map((p) => (typeof p === "string" ? p : p.toString("base64url")))
    .join(".");
}

/** Opens a sealed secret; throws if it was tampered with, sealed for another serial, or malformed. */
export function openSecret(sealed: string, key: Buffer, serialNumber: string): string {
  const [version, iv, body, tag] = sealed.split(".");
  if (version !== "v1" || iv === undefined || body === undefined || tag === undefined) {
    throw new Error("malformed sealed secret");
  }
  const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
  decipher.setAAD(Buffer.from(serialNumber, "utf8"));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
}
