import { canonicalString, signCanonical, verifyCanonical } from "./sign.ts";

/**
 * What a device signs to re-provision through fleet provisioning (by claim) when its product
 * allows replacing a certificate. The claim certificate is shared by every device of a firmware
 * image, so it proves nothing about which device asks: a second provisioning of a serial needs the
 * device's own secret, the same proof the vending API asks for. The device knows the new
 * certificate's id from `$aws/certificates/create-from-csr/json/accepted` before it sends the
 * provision request, so the signature binds the request to that certificate.
 */
export type FleetSignedFields = {
  serialNumber: string;
  productKey: string;
  /** Milliseconds since the epoch. */
  timestamp: number;
  nonce: string;
  /** The id of the certificate AWS IoT made for this provisioning (64 hex characters). */
  certificateId: string;
};

export const FLEET_SIGNATURE_ALGORITHM = "ONRAMP-FLEET-HMAC-SHA256";

/** The canonical content: one field per line in a fixed order (see vendCanonicalContent). */
export function fleetCanonicalContent(fields: FleetSignedFields): string {
  return canonicalString([
    FLEET_SIGNATURE_ALGORITHM,
    fields.serialNumber,
    fields.productKey,
    String(fields.timestamp),
    fields.nonce,
    fields.certificateId.toLowerCase(),
  ]);
}

/** Lowercase hex HMAC-SHA256 of the canonical content, keyed by the UTF-8 bytes of `secret`. */
export function signFleetRequest(fields: FleetSignedFields, secret: string): string {
  return signCanonical(secret, fleetCanonicalContent(fields));
}

/** Constant-time check of a fleet re-provisioning signature (hex, either case). */
export function verifyFleetSignature(fields: FleetSignedFields, secret: string, signature: string): boolean {
  return verifyCanonical(secret, fleetCanonicalContent(fields), signature);
}
