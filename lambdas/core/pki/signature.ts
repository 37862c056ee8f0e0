import { constants as cryptoConstants, type KeyObject, verify } from "node:crypto";
import { signedParts } from "./der.ts";

/**
 * A signature algorithm as @peculiar/x509 describes it (`{name, hash}` in WebCrypto terms; typed
 * loosely because the library's `Algorithm` type comes from the DOM lib this project leaves out).
 */
type SignatureAlgorithm = { name?: unknown; hash?: unknown; saltLength?: unknown };

/**
 * Verifies the signature of a certificate or CSR (its DER) with a public key. Uses Node's
 * OpenSSL binding directly: one key parse per call instead of two through WebCrypto. Returns
 * false for any failure, including algorithms it does not know.
 */
export function verifySignedStructure(der: Uint8Array, signatureAlgorithm: unknown, key: KeyObject): boolean {
  const algorithm = (signatureAlgorithm ?? {}) as SignatureAlgorithm;
  const parts = signedParts(der);
  if (!parts) return false;
  const hashName = hashOf(algorithm);
  try {
    switch (algorithm.name) {
      case "ECDSA":
        return hashName !== undefined && verify(hashName, parts.toBeSigned, key, parts.signature);
      case "RSASSA-PKCS1-v1_5":
        return hashName !== undefined && verify(hashName, parts.toBeSigned, key, parts.signature);
      case "RSA-PSS":
        return (
          hashName !== undefined &&
          verify(
            hashName,
            parts.toBeSigned,
            { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: saltLengthOf(algorithm) },
            parts.signature,
          )
        );
      case "Ed25519":
      case "Ed448":
      case "EdDSA":
        return verify(null, parts.toBeSigned, key, parts.signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

function saltLengthOf(algorithm: SignatureAlgorithm): number {
  const saltLength = algorithm.saltLength;
  return typeof saltLength === "number" ? saltLength : 32;
}

function hashOf(algorithm: SignatureAlgorithm): string | undefined {
  const hash = algorithm.hash;
  const name = typeof hash === "string" ? hash : (hash as { name?: unknown } | undefined)?.name;
  if (typeof name !== "string") return undefined;
  const normalized = name.replace("-", "").toLowerCase();
  return /^sha(1|224|256|384|512)$/.test(normalized) ? normalized : undefined;
}
