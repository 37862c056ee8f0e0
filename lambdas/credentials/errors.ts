/**
 * The one error type of the credentials module. Every parse, build and verify function throws only
 * `CredentialError` on bad input, with a stable `code` and the `field` that is wrong. Messages never
 * contain a secret, a password or an expected signature, so they are safe to log and to return.
 */

/** Stable, machine-readable reasons a credential was rejected. */
export type CredentialErrorCode =
  | "INVALID_INPUT" // an argument given to a build function is unusable (empty, bad characters)
  | "MALFORMED_IDENTITY" // EnOS PSK identity without exactly four comma-separated fields
  | "MALFORMED_CLIENT_ID" // MQTT clientId not in the `{id}|k=v,k=v|` form
  | "MALFORMED_USERNAME" // MQTT username not in the `a&b` form
  | "MALFORMED_PASSWORD" // password not decodable, or not hex of the digest length
  | "MALFORMED_FORM" // HTTPS registration form that cannot be read
  | "MALFORMED_GROUP_KEY" // group key that is not valid base64
  | "MALFORMED_TIMESTAMP" // timestamp that is not a millisecond count
  | "MALFORMED_LIFETIME" // PSK lifetime that is not a decimal integer
  | "MALFORMED_PARAMETER" // any other parameter value with characters it may not hold
  | "EMPTY_VALUE" // a required part is present but empty
  | "MISSING_PARAMETER" // a required clientId or form parameter is absent
  | "DUPLICATE_PARAMETER" // a clientId or form parameter appears twice
  | "UNSUPPORTED_SIGN_METHOD"
  | "UNSUPPORTED_SECURE_MODE"
  | "UNSUPPORTED_AUTH_TYPE"
  | "SCHEME_NOT_ALLOWED" // a well-formed request of a scheme the caller does not accept
  | "LIFETIME_OUT_OF_RANGE"
  | "STALE_TIMESTAMP" // a correctly signed timestamp outside the accepted window
  | "BAD_SIGNATURE"; // the password, sign or token does not match

/**
 * The input that is wrong: an MQTT CONNECT field (`clientId`, `username`, `password`), a clientId
 * parameter by its wire name (`securemode`, `signmethod`, `timestamp`, `authType`, `random`), a
 * PSK identity part, a form field, or the name of a build-function argument (`deviceName`, ...).
 */
export type CredentialField = string;

/** A credential was malformed, unsupported, stale, or did not verify. */
export class CredentialError extends Error {
  constructor(
    readonly code: CredentialErrorCode,
    readonly field: CredentialField,
    message: string,
  ) {
    super(message);
    this.name = "CredentialError";
  }
}
