/**
 * EnOS CoAP over DTLS with a pre-shared key (seed 000).
 * identity `{ProductKey},{DeviceKey},{SecureMode},{Lifetime}`, key = SHA-256(secret) bytes 9..24.
 */
import { createHash } from "node:crypto";
import { CredentialError } from "./errors.ts";
import { checkSecret, checkText } from "./field-checks.ts";

/** 2: the secret is the DeviceSecret. 3: the ProductSecret (dynamic activation). */
export type EnosPskSecureMode = 2 | 3;

/** Shortest and longest accepted lifetime, seconds. */
export const ENOS_PSK_LIFETIME_MIN = 30;
export const ENOS_PSK_LIFETIME_MAX = 86_400;
/** Length of the PSK key in bytes. */
export const ENOS_PSK_KEY_LENGTH = 16;

/** The parts of a PSK identity. */
export interface EnosPskIdentity {
  productKey: string;
  deviceKey: string;
  secureMode: EnosPskSecureMode;
  /** Seconds without traffic after which the device counts as offline (30–86,400). */
  lifetime: number;
}

/** What a device configures in its DTLS stack. */
export interface EnosPsk {
  identity: string;
  /** The 16-byte key. */
  key: Uint8Array;
  /** The key as lowercase hex. */
  keyHex: string;
}

/** The 16-byte PSK key for `secret`: bytes 9 to 24 (1-based) of SHA-256(UTF-8 secret). */
export function enosPskKey(secret: string): Uint8Array {
  checkSecret(secret);
  return Uint8Array.from(createHash("sha256").update(secret, "utf8").digest().subarray(8, 24));
}

const checkLifetime = (lifetime: number, code: "INVALID_INPUT" | "LIFETIME_OUT_OF_RANGE"): number => {
  if (!Number.isInteger(lifetime) || lifetime < ENOS_PSK_LIFETIME_MIN || lifetime > ENOS_PSK_LIFETIME_MAX) {
    throw new CredentialError(
      code,
      "lifetime",
      `lifetime must be an integer from ${ENOS_PSK_LIFETIME_MIN} to ${ENOS_PSK_LIFETIME_MAX} seconds`,
    );
  }
  return lifetime;
};

/** Writes `{productKey},{deviceKey},{secureMode},{lifetime}`; throws `INVALID_INPUT` on bad parts. */
export function formatEnosPskIdentity(identity: EnosPskIdentity): string {
  checkText(identity.productKey, "productKey", { forbidden: "," });
  checkText(identity.deviceKey, "deviceKey", { forbidden: "," });
  if (identity.secureMode !== 2 && identity.secureMode !== 3) {
    throw new CredentialError("INVALID_INPUT", "securemode", "securemode must be 2 or 3");
  }
  checkLifetime(identity.lifetime, "INVALID_INPUT");
  return `${identity.productKey},${identity.deviceKey},${identity.secureMode},${identity.lifetime}`;
}

/**
 * Builds the PSK identity and key a device uses; `secret` is the DeviceSecret for secure mode 2 and
 * the ProductSecret for secure mode 3.
 */
export function buildEnosPsk(identity: EnosPskIdentity & { secret: string }): EnosPsk {
  const text = formatEnosPskIdentity(identity);
  const key = enosPskKey(identity.secret);
  return { identity: text, key, keyHex: Buffer.from(key).toString("hex") };
}

/**
 * Parses a PSK identity as the DTLS server receives it. Throws `CredentialError`:
 * `MALFORMED_IDENTITY` (not four fields), `EMPTY_VALUE` (productKey/deviceKey),
 * `UNSUPPORTED_SECURE_MODE` (not 2 or 3), `MALFORMED_LIFETIME` (not a decimal integer) or
 * `LIFETIME_OUT_OF_RANGE` (outside 30–86,400).
 */
export function parseEnosPskIdentity(identity: unknown): EnosPskIdentity {
  const text = checkText(identity, "identity", { code: "MALFORMED_IDENTITY" });
  const parts = text.split(",");
  if (parts.length !== 4) {
    throw new CredentialError(
      "MALFORMED_IDENTITY",
      "identity",
      "identity must be {productKey},{deviceKey},{secureMode},{lifetime}",
    );
  }
  const [productKey = "", deviceKey = "", mode = "", lifetime = ""] = parts;
  if (productKey.length === 0) throw new CredentialError("EMPTY_VALUE", "productKey", "productKey is empty");
  if (deviceKey.length === 0) throw new CredentialError("EMPTY_VALUE", "deviceKey", "deviceKey is empty");
  if (mode !== "2" && mode !== "3") {
    throw new CredentialError("UNSUPPORTED_SECURE_MODE", "securemode", "securemode must be 2 or 3");
  }
  if (!/^[1-9][0-9]{0,9}$/.test(lifetime)) {
    throw new CredentialError("MALFORMED_LIFETIME", "lifetime", "lifetime must be a decimal integer");
  }
  return {
    productKey,
    deviceKey,
    secureMode: mode === "2" ? 2 : 3,
    lifetime: checkLifetime(Number(lifetime), "LIFETIME_OUT_OF_RANGE"),
  };
}
