import { TextDecoder } from "node:util";
import { decodeBase64Strict } from "./base64.ts";
import { CredentialError } from "./errors.ts";
import { checkText } from "./field-checks.ts";

/**
 * How the password reaches the server: `raw` as the device sent it, or `base64` as AWS IoT's custom
 * authorizer delivers it (`protocolData.mqtt.password` is the base64 of the password bytes).
 */
export type PasswordEncoding = "raw" | "base64";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Returns the password text. `base64` input is decoded strictly and must be UTF-8. Throws
 * `CredentialError` (`MALFORMED_PASSWORD`/`EMPTY_VALUE`, field `password`) otherwise.
 */
export function decodePassword(password: unknown, encoding: PasswordEncoding = "raw"): string {
  if (encoding === "raw") {
    return checkText(password, "password", { code: "MALFORMED_PASSWORD", allowControl: true });
  }
  const bytes = decodeBase64Strict(password, "password", "MALFORMED_PASSWORD");
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new CredentialError("MALFORMED_PASSWORD", "password", "password is not UTF-8");
  }
  return checkText(text, "password", { code: "MALFORMED_PASSWORD", allowControl: true });
}

/** Throws `MALFORMED_PASSWORD` unless `password` is hex of exactly `length` characters. */
export function checkHexPassword(password: string, length: number, field = "password"): string {
  if (password.length !== length || !/^[0-9A-Fa-f]+$/.test(password)) {
    throw new CredentialError("MALFORMED_PASSWORD", field, `${field} must be ${length} hex characters`);
  }
  return password;
}
