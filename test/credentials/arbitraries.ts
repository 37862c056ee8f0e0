/** Shared fast-check arbitraries for the credentials tests. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { CredentialError } from "#credentials/index.ts";

const NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@";

/** Device names, product keys, client ids: the characters the platforms allow. */
export const name = fc.string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 1, maxLength: 32 });

/** Secrets: any non-empty, well-formed text (printable, spaces, CJK, emoji). */
export const secret = fc.string({ unit: "grapheme", minLength: 1, maxLength: 48 });

/** Whether `text` holds a C0 control character or DEL (which names and tokens may not). */
export const hasControl = (text: string): boolean =>
  [...text].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);

/** Random values for registration (no clientId delimiters). */
export const random = fc.string({
  unit: fc.constantFrom(..."0123456789abcdefABCDEF"),
  minLength: 1,
  maxLength: 24,
});

/** Epoch milliseconds. */
export const timestamp = fc.integer({ min: 0, max: 4_102_444_800_000 });

/** Any string at all: any UTF-16 code unit, lone surrogates and control characters included. */
export const anyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
);

/** Strings assembled from the tokens of the wire formats, to reach the deeper parser branches. */
export const tokenSoup = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        "|",
        ",",
        "=",
        "&",
        "?",
        "securemode",
        "signmethod",
        "timestamp",
        "authType",
        "random",
        "register",
        "regnwl",
        "connwl",
        "hmacsha1",
        "hmacsha256",
        "hmacmd5",
        "sha1",
        "md5",
        "sha256",
        "2",
        "3",
        "-2",
        "789",
        "__proto__",
        "constructor",
        "%",
        "+",
        "\u0000",
        "\ud800",
      ),
      name,
    ),
    { maxLength: 14 },
  )
  .map((parts) => parts.join(""));

/** Runs `fn` and fails unless it returns or throws a `CredentialError` (never another type). */
export function onlyCredentialErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof CredentialError, `threw ${String(error)}`);
    assert.equal(error.name, "CredentialError");
    assert.equal(typeof error.code, "string");
    assert.equal(typeof error.field, "string");
  }
}

/** Asserts `fn` throws a `CredentialError` with `code` (and `field` when given). */
export function throwsCredential(fn: () => unknown, code: string, field?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CredentialError, `threw ${String(error)}`);
    assert.equal(error.code, code);
    if (field !== undefined) assert.equal(error.field, field);
    return true;
  });
}

/** Moderate run count keeps the suite fast. */
export const RUNS = { numRuns: 150 };
