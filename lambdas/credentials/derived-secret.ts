/**
 * Per-device secrets derived from a group (or product) key, as Azure DPS symmetric-key enrollment
 * groups do: deviceSecret = base64(HMAC-SHA256(base64decode(groupKey), utf8(registrationId))).
 * A product secret stored as base64 thereby yields a per-device secret without a per-device record.
 */
import { createHmac } from "node:crypto";
import { decodeBase64Strict } from "./base64.ts";
import { checkText } from "./field-checks.ts";

/** Length of a derived secret in bytes (before base64). */
export const DERIVED_SECRET_LENGTH = 32;

/**
 * Derives the device secret for `registrationId` from a base64 `groupKey`. Throws `CredentialError`
 * `MALFORMED_GROUP_KEY` (field `groupKey`) when the key is not canonical padded base64, and
 * `INVALID_INPUT` (field `registrationId`) for an empty or malformed id.
 */
export function deriveDeviceSecret(groupKey: string, registrationId: string): string {
  const key = decodeBase64Strict(groupKey, "groupKey", "MALFORMED_GROUP_KEY");
  const id = checkText(registrationId, "registrationId");
  return createHmac("sha256", key).update(id, "utf8").digest("base64");
}
