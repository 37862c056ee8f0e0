import { ValidationError } from "../errors.ts";

/** Why a certificate signing request was refused. */
export type CsrRejectionReason =
  | "MALFORMED"
  | "BAD_SIGNATURE"
  | "WEAK_SIGNATURE"
  | "AMBIGUOUS_SUBJECT"
  | "WEAK_KEY"
  | "UNSUPPORTED_KEY";

/** A CSR that is not PEM, does not parse, fails proof of possession or has a refused key. */
export class InvalidCsrError extends ValidationError {
  constructor(
    readonly reason: CsrRejectionReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Why a certificate was refused. */
export type CertificateRejectionReason = "MALFORMED" | "UNSUPPORTED_KEY";

/** A certificate (or bundle) that is not PEM or does not parse as X.509. */
export class InvalidCertificateError extends ValidationError {
  constructor(
    readonly reason: CertificateRejectionReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Why a key was refused. */
export type KeyRejectionReason = "MALFORMED" | "UNSUPPORTED_KEY" | "KEY_MISMATCH";

/** A private or public key that does not parse, has an unsupported algorithm or does not match. */
export class InvalidKeyError extends ValidationError {
  constructor(
    readonly reason: KeyRejectionReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
