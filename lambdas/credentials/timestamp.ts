import { CredentialError } from "./errors.ts";

/** Default accepted difference between a signed timestamp and the verifier's clock: 15 minutes. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

/** Options shared by the verify functions of timestamped schemes. */
export interface TimestampOptions {
  /** The verifier's clock in epoch milliseconds (default `Date.now()`); inject it in tests. */
  now?: number;
  /** Largest accepted |now - timestamp| in milliseconds (default 15 minutes). `Infinity` disables. */
  maxClockSkewMs?: number;
  /** Reject requests that carry no timestamp (default `true`: an unsigned time allows replay). */
  requireTimestamp?: boolean;
}

const MILLIS = /^[0-9]{1,16}$/;

/** Checks that `text` is a millisecond epoch timestamp (1–16 decimal digits) and returns it. */
export function checkTimestampText(text: string, field = "timestamp"): string {
  if (!MILLIS.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new CredentialError("MALFORMED_TIMESTAMP", field, `${field} must be epoch milliseconds`);
  }
  return text;
}

/** Checks a number given to a build function as epoch milliseconds and returns its decimal text. */
export function timestampArgument(value: unknown, field = "timestamp"): string {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new CredentialError("INVALID_INPUT", field, `${field} must be a non-negative integer (ms)`);
  }
  return String(value);
}

/**
 * Throws `STALE_TIMESTAMP` when the signed `timestamp` (decimal ms, already checked) is further
 * than the allowed skew from `now`, and `MISSING_PARAMETER` when it is absent but required.
 */
export function checkTimestampWindow(timestamp: string | undefined, options: TimestampOptions = {}): void {
  if (timestamp === undefined) {
    if (options.requireTimestamp ?? true) {
      throw new CredentialError("MISSING_PARAMETER", "timestamp", "timestamp is required");
    }
    return;
  }
  const now = options.now ?? Date.now();
  const maxSkew = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (!(Math.abs(now - Number(timestamp)) <= maxSkew)) {
    throw new CredentialError("STALE_TIMESTAMP", "timestamp", "timestamp is outside the accepted window");
  }
}
