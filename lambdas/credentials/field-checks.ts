import { CredentialError, type CredentialErrorCode } from "./errors.ts";

/** Longest value accepted for any single text input (names, ids, secrets, tokens). */
export const MAX_TEXT_LENGTH = 1024;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE = /\p{Cs}/u;

export interface TextRules {
  /** Error code for a bad value (default `INVALID_INPUT`, the code for build-function arguments). */
  code?: CredentialErrorCode;
  /** Characters the value may not contain, because they delimit it on the wire. */
  forbidden?: string;
  /** Allow control characters (secrets are opaque bytes; names are not). */
  allowControl?: boolean;
}

/**
 * Returns `value` when it is a non-empty, well-formed string without control characters or the
 * `forbidden` delimiters; otherwise throws a `CredentialError` naming `field`. The message names
 * the rule, never the value.
 */
export function checkText(value: unknown, field: string, rules: TextRules = {}): string {
  const code = rules.code ?? "INVALID_INPUT";
  if (typeof value !== "string") throw new CredentialError(code, field, `${field} must be a string`);
  if (value.length === 0) {
    throw new CredentialError(code === "INVALID_INPUT" ? code : "EMPTY_VALUE", field, `${field} is empty`);
  }
  if (value.length > MAX_TEXT_LENGTH) {
    throw new CredentialError(code, field, `${field} is longer than ${MAX_TEXT_LENGTH} characters`);
  }
  if (LONE_SURROGATE.test(value)) {
    throw new CredentialError(code, field, `${field} is not well-formed Unicode`);
  }
  if (!rules.allowControl && CONTROL_CHARACTER.test(value)) {
    throw new CredentialError(code, field, `${field} contains control characters`);
  }
  if (rules.forbidden) {
    for (const ch of rules.forbidden) {
      if (value.includes(ch)) {
        throw new CredentialError(code, field, `${field} must not contain "${ch}"`);
      }
    }
  }
  return value;
}

/** Checks a secret (device secret, product secret, device token): non-empty, well-formed text. */
export function checkSecret(value: unknown, field = "secret"): string {
  return checkText(value, field, { allowControl: true });
}

/** Returns `value` when it is one of `allowed`, otherwise throws `code` naming `field`. */
export function checkOneOf<T extends string | number>(
  value: unknown,
  allowed: readonly T[],
  field: string,
  code: CredentialErrorCode,
): T {
  const found = allowed.find((candidate) => candidate === value);
  if (found === undefined) {
    throw new CredentialError(code, field, `${field} must be one of ${allowed.join(", ")}`);
  }
  return found;
}
