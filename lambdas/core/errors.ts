/**
 * Domain errors. Every error a use case raises on purpose extends DomainError and names its
 * `kind`; one mapper (handlers/http-response.ts) turns kinds into HTTP status codes. Nothing above
 * the adapters knows AWS SDK error names.
 */
export type ErrorKind =
  | "invalid" // 400: the request is malformed
  | "unauthenticated" // 401: bad signature, stale timestamp, reused nonce
  | "forbidden" // 403: unknown, disabled or revoked device (one message for all)
  | "not-found" // 404
  | "conflict" // 409: already provisioned, already exists
  | "too-large" // 413
  | "unsupported-media-type" // 415: the body is not in a media type the endpoint reads
  | "throttled" // 429: a dependency throttled us and retries did not help
  | "unavailable"; // 503: a dependency failed

export abstract class DomainError extends Error {
  abstract readonly kind: ErrorKind;
  /** A stable, machine-readable code such as `SERIAL_ALREADY_CLAIMED`. */
  abstract readonly code: string;
  /** Seconds a client should wait before retrying (throttled / unavailable). */
  readonly retryAfterSeconds: number | undefined = undefined;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ValidationError extends DomainError {
  readonly kind = "invalid";
  readonly code: string = "INVALID_REQUEST";
}

export class AuthenticationError extends DomainError {
  readonly kind = "unauthenticated";
  constructor(
    readonly code: "BAD_SIGNATURE" | "STALE_TIMESTAMP" | "NONCE_REUSED",
    message: string,
  ) {
    super(message);
  }
}

/** Unknown, disabled and revoked devices share one message so serials cannot be enumerated. */
export class DeviceNotAllowedError extends DomainError {
  readonly kind = "forbidden";
  readonly code = "DEVICE_NOT_ALLOWED";
  constructor(readonly reason: "unknown" | "disabled" | "revoked" | "wrong-product" | "untrusted-ca") {
    super("This device is not allowed to provision.");
  }
}

export class NotFoundError extends DomainError {
  readonly kind = "not-found";
  readonly code = "NOT_FOUND";
}

export class ConflictError extends DomainError {
  readonly kind = "conflict";
  override readonly retryAfterSeconds: number | undefined;
  /** `retryAfterSeconds` for a conflict that clears by itself (a flow in progress). */
  constructor(
    readonly code: string,
    message: string,
    retryAfterSeconds?: number,
  ) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class PayloadTooLargeError extends DomainError {
  readonly kind = "too-large";
  readonly code = "PAYLOAD_TOO_LARGE";
}

/** A request body sent as something other than the one media type the endpoint reads. */
export class UnsupportedMediaTypeError extends DomainError {
  readonly kind = "unsupported-media-type";
  readonly code = "UNSUPPORTED_MEDIA_TYPE";
}

export class DependencyThrottledError extends DomainError {
  readonly kind = "throttled";
  readonly code = "THROTTLED";
  override readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class DependencyUnavailableError extends DomainError {
  readonly kind = "unavailable";
  readonly code = "UNAVAILABLE";
  override readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 2, options?: { cause?: unknown }) {
    super(message, options);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
