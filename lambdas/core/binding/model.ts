import { createHash } from "node:crypto";
import * as z from "zod/mini";
import { ConflictError, DomainError } from "../errors.ts";

/**
 * Device–user binding (issue 11, seeds 001 and 003): a device and a phone exchange a one-time
 * token on the LAN (or during Wi-Fi provisioning); the cloud binds the phone's user to the device
 * when both sides have shown it the same token. See ARCHITECTURE.md, "Binding".
 */

/** A binding token as devices and phones send it: 16 random bytes as 32 uppercase hex characters. */
export const bindingTokenSchema = z
  .string()
  .check(z.regex(/^[0-9A-F]{32}$/, "32 uppercase hexadecimal characters"));

/** Tokens are secrets: only their SHA-256 (hex) is stored, looked up and ever logged by nobody. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** A device as binding names it: (productKey, deviceName); deviceName is the registry serial. */
export type DeviceRef = { productKey: string; deviceName: string };

/**
 * A token the cloud knows: reported by a device (productKey/deviceName set), registered by a phone
 * (phoneUserId set), or both, in either order. `usedBy` is the user whose bind consumed it.
 */
export type TokenRecord = {
  tokenHash: string;
  productKey?: string;
  deviceName?: string;
  reportedAt?: string;
  phoneUserId?: string;
  registeredAt?: string;
  usedBy?: string;
  usedAt?: string;
  /** Epoch ms after which the token binds nothing (the item's TTL attribute is in seconds). */
  expiresAtMs: number;
};

/** A user's binding to a device. */
export type Binding = DeviceRef & { userId: string; boundAt: string };

/** How a binding was made or removed, for the audit record. */
export type BindingVia = "device-token" | "phone-token" | "user-unbind" | "device-reset";

/** One audit record: every bind, unbind and reset (who, when, how). Never the token. */
export type AuditRecord = DeviceRef & {
  action: "bind" | "unbind" | "reset";
  /** The user bound or unbound; absent for a reset that removed no binding. */
  userId?: string;
  via: BindingVia;
  at: string;
  /** Makes a retried action write the same record (bind: the token's hash prefix). */
  dedupeKey?: string;
};

/** An authenticated phone user (from the API Gateway Cognito authorizer's claims). */
export type BindingUser = { userId: string; username: string; operator: boolean };

/**
 * Unknown, expired, used, other device's or other user's token: one answer that does not tell
 * which (so a token cannot be probed).
 */
export class BindingRefusedError extends DomainError {
  readonly kind = "forbidden";
  readonly code = "BINDING_REFUSED";
  constructor() {
    super("The binding token is not valid for this device.");
  }
}

/** A single-owner product's device already bound to someone else. */
export class DeviceAlreadyBoundError extends ConflictError {
  constructor() {
    super(
      "DEVICE_ALREADY_BOUND",
      "This device is already bound to another user; it must be unbound or reset first.",
    );
  }
}

/** Too many failed binds by this user in the current window. */
export class TooManyFailedBindsError extends DomainError {
  readonly kind = "throttled";
  readonly code = "TOO_MANY_FAILED_BINDS";
  override readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super("Too many failed binding attempts; retry later.");
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * Too many token reports from this device in the current window: the report is answered 429 on
 * its `_reply` topic and not stored (a device cannot flood the binding table).
 */
export class TooManyTokenReportsError extends DomainError {
  readonly kind = "throttled";
  readonly code = "TOO_MANY_TOKEN_REPORTS";
  override readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super(`Too many token reports from this device; retry in ${retryAfterSeconds} s.`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A counter of events in fixed windows (the store keys one item per counter and window): a user's
 * failed binds, a device's token reports.
 */
export type WindowCounter =
  | { kind: "failed-binds"; userId: string }
  | { kind: "token-reports"; device: DeviceRef };

/** A non-operator on an operator route. */
export class OperatorOnlyError extends DomainError {
  readonly kind = "forbidden";
  readonly code = "FORBIDDEN";
  constructor() {
    super("This route is for operators only.");
  }
}

/** The binding use cases' settings (all times from the injected clock). */
export type BindingConfig = {
  /** TTL of a phone-made token registered before its device reported it (the product's applies once known). */
  phoneTokenTtlSeconds: number;
  /** Failed binds allowed per user per window. */
  maxFailedBinds: number;
  failedBindWindowSeconds: number;
  /** Token reports allowed per device per window (more are answered 429 and not stored). */
  maxTokenReports: number;
  tokenReportWindowSeconds: number;
};

export const defaultBindingConfig: BindingConfig = {
  phoneTokenTtlSeconds: 180,
  maxFailedBinds: 10,
  failedBindWindowSeconds: 900,
  // Seeds 001/003: an unbound device reports a fresh token every ~45 s (remainTime 40-44 s) and
  // after every phone GET of device.info, plus one retry after 30 s without an answer. 10 minutes
  // of that is ~14 periodic reports, ~27 if each were retried; 30 leaves room for a few phone
  // GETs on top and still caps a flooding device at 3 writes a minute.
  maxTokenReports: 30,
  tokenReportWindowSeconds: 600,
};

/** A request without a verified user (API Gateway's authorizer normally stops it first). */
export class MissingIdentityError extends DomainError {
  readonly kind = "unauthenticated";
  readonly code = "UNAUTHENTICATED";
  constructor() {
    super("Sign in first: the request carries no verified user.");
  }
}

/** Members of this Cognito group may use the operator routes. */
export const OPERATOR_GROUP = "onramp-operators";
