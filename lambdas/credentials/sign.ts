import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** Digest algorithms the device protocols use. */
export type HashAlgorithm = "sha1" | "sha256" | "md5";

/** Letter case of hexadecimal output. */
export type HexCase = "lower" | "upper";

/** Hex length of each digest (two characters per byte). */
export const DIGEST_HEX_LENGTH: Readonly<Record<HashAlgorithm, number>> = { md5: 32, sha1: 40, sha256: 64 };

const applyCase = (hex: string, hexCase: HexCase): string => (hexCase === "upper" ? hex.toUpperCase() : hex);

/** Hex digest of the UTF-8 bytes of `content` (lowercase unless `hexCase` is `"upper"`). */
export function hashHex(algorithm: HashAlgorithm, content: string, hexCase: HexCase = "lower"): string {
  return applyCase(createHash(algorithm).update(content, "utf8").digest("hex"), hexCase);
}

/**
 * Hex HMAC of the UTF-8 bytes of `content` under `key` (a string is used as its UTF-8 bytes).
 * Lowercase unless `hexCase` is `"upper"`.
 */
export function hmacHex(
  algorithm: HashAlgorithm,
  key: string | Uint8Array,
  content: string,
  hexCase: HexCase = "lower",
): string {
  return applyCase(createHmac(algorithm, key).update(content, "utf8").digest("hex"), hexCase);
}

/**
 * The sign content of the Alibaba and EnOS MQTT schemes: parameters sorted by name (code-unit
 * order), each written as name then value, concatenated without separators. Parameters whose value
 * is `undefined` are left out.
 */
export function sortedSignContent(params: Readonly<Record<string, string | undefined>>): string {
  return Object.keys(params)
    .sort()
    .map((name) => {
      const value = params[name];
      return value === undefined ? "" : `${name}${value}`;
    })
    .join("");
}

/** Joins the parts of a canonical request with `\n`, the separator `signCanonical` expects. */
export function canonicalString(parts: readonly string[]): string {
  return parts.join("\n");
}

/**
 * Signs a canonical string (for example the vending API's `method\npath\ntimestamp\nbodyHash`):
 * lowercase hex HMAC-SHA256 under `key`.
 */
export function signCanonical(key: string | Uint8Array, canonical: string): string {
  return hmacHex("sha256", key, canonical);
}

/**
 * Checks a signature made by `signCanonical` in constant time. Hex case is ignored; anything that is
 * not the right signature (wrong length, not hex, not a string) gives `false`.
 */
export function verifyCanonical(key: string | Uint8Array, canonical: string, signature: string): boolean {
  if (typeof signature !== "string") return false;
  return constantTimeEqual(signCanonical(key, canonical), signature.toLowerCase());
}

/**
 * Compares two strings in time that does not depend on where they differ (`timingSafeEqual` on
 * their UTF-16 code units, which is lossless even for malformed strings). Strings of different
 * lengths are unequal; the comparison still runs on equal-length buffers so it does not throw.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  if (typeof a !== "string" || typeof b !== "string") return false;
  const left = Buffer.from(a, "utf16le");
  const right = Buffer.from(b, "utf16le");
  if (left.length !== right.length) {
    timingSafeEqual(left, left); // same work as a real comparison; the length itself is not secret
    return false;
  }
  return timingSafeEqual(left, right);
}

/** Compares two hex strings in constant time, ignoring letter case. */
export function hexEqual(expected: string, received: string): boolean {
  return constantTimeEqual(expected.toLowerCase(), received.toLowerCase());
}
