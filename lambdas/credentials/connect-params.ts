import type { ParsedClientId } from "./client-id.ts";
import { CredentialError } from "./errors.ts";
import { checkTimestampText } from "./timestamp.ts";

/** Returns clientId parameter `name`, or throws `MISSING_PARAMETER` naming it. */
export function requireParam(clientId: ParsedClientId, name: string): string {
  const value = clientId.params[name];
  if (value === undefined) {
    throw new CredentialError("MISSING_PARAMETER", name, `clientId parameter ${name} is required`);
  }
  return value;
}

/** Returns the `timestamp` parameter when present (checked to be decimal milliseconds). */
export function optionalTimestamp(clientId: ParsedClientId): string | undefined {
  const value = clientId.params.timestamp;
  return value === undefined ? undefined : checkTimestampText(value);
}

/** Returns `value` lowercased when it is one of `allowed`, else throws `UNSUPPORTED_SIGN_METHOD`. */
export function signMethodParam<T extends string>(value: string, allowed: readonly T[]): T {
  const lower = value.toLowerCase();
  const found = allowed.find((m) => m === lower);
  if (found === undefined) {
    throw new CredentialError(
      "UNSUPPORTED_SIGN_METHOD",
      "signmethod",
      `signmethod must be one of ${allowed.join(", ")}`,
    );
  }
  return found;
}
