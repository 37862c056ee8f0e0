import { canonicalString, hashHex, signCanonical, verifyCanonical } from "./sign.ts";

/** The fields a device signs when it asks the vending API for a certificate. */
export type VendSignedFields = {
  serialNumber: string;
  productKey: string;
  /** Milliseconds since the epoch. */
  timestamp: number;
  nonce: string;
  keyMode: "csr" | "server";
  /** The PEM CSR exactly as sent (csr mode); its SHA-256 is signed so it cannot be swapped. */
  csr?: string;
};

export const VEND_SIGNATURE_ALGORITHM = "ONRAMP-HMAC-SHA256";

/**
 * The canonical content of a vend request: one field per line in a fixed order, the CSR replaced
 * by the hex SHA-256 of its UTF-8 bytes ("-" in server-key mode). See openapi.yaml.
 */
export function vendCanonicalContent(fields: VendSignedFields): string {
  return canonicalString([
    VEND_SIGNATURE_ALGORITHM,
    fields.serialNumber,
    fields.productKey,
    String(fields.timestamp),
    fields.nonce,
    fields.keyMode,
    fields.csr === undefined ? "-" : hashHex("sha256", fields.csr),
  ]);
}

/** Lowercase hex HMAC-SHA256 of the canonical content, keyed by the UTF-8 bytes of `secret`. */
export function signVendRequest(fields: VendSignedFields, secret: string): string {
  return signCanonical(secret, vendCanonicalContent(fields));
}

/** Constant-time check of a vend signature (hex, either case). */
export function verifyVendSignature(fields: VendSignedFields, secret: string, signature: string): boolean {
  return verifyCanonical(secret, vendCanonicalContent(fields), signature);
}
