import type { KeyObject } from "node:crypto";
import { readCsrDnsNames, readRsaPssParameters } from "./csr-attributes.ts";
import { csrParts } from "./der.ts";
import {
  countNameFields,
  type DistinguishedName,
  readDistinguishedName,
} from "./distinguished-name-reader.ts";
import { InvalidCsrError } from "./errors.ts";
import {
  checkKeyPolicy,
  DEFAULT_KEY_POLICY,
  describePublicKey,
  type KeyPolicy,
  publicKeyObject,
  type SupportedKeyAlgorithm,
  sha256Hex,
} from "./keys.ts";
import { readPemBlocks, toPem } from "./pem.ts";
import { verifySignedStructure } from "./signature.ts";

/** A certificate signing request whose signature (proof of possession) was verified. */
export type ParsedCsr = {
  subject: DistinguishedName;
  keyAlgorithm: SupportedKeyAlgorithm;
  /** The SubjectPublicKeyInfo, DER. */
  publicKeySpkiDer: Uint8Array;
  /** The public key as a `PUBLIC KEY` PEM. */
  publicKeyPem: string;
  /** Lowercase hex SHA-256 of the SPKI DER: the same for the CSR and the certificate issued from it. */
  publicKeyFingerprint: string;
  /** DNS names of a subjectAltName extension request, if any. */
  dnsNames: string[];
  /** The CSR in normalized PEM. */
  pem: string;
};

/** Options of parseCsr. */
export type ParseCsrOptions = {
  /** Keys to accept; DEFAULT_KEY_POLICY (RSA >= 2048, EC P-256/P-384) when absent. */
  keyPolicy?: KeyPolicy;
  /** Longest PEM text accepted, in characters (default 16 KiB). */
  maxLength?: number;
};

/** id-RSASSA-PSS, 1.2.840.113549.1.1.10: its parameters carry the hash and salt length. */
const RSASSA_PSS = "2a864886f70d01010a";

const PEM_LABELS = new Set(["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]);

/** Signature algorithms by OID (hex of the OID's content bytes), in WebCrypto terms. */
const SIGNATURE_ALGORITHMS: Record<string, { name: string; hash?: string }> = {
  "2a8648ce3d040302": { name: "ECDSA", hash: "SHA-256" },
  "2a8648ce3d040303": { name: "ECDSA", hash: "SHA-384" },
  "2a8648ce3d040304": { name: "ECDSA", hash: "SHA-512" },
  "2a8648ce3d0401": { name: "ECDSA", hash: "SHA-1" },
  "2a8648ce3d040301": { name: "ECDSA", hash: "SHA-224" },
  "2a864886f70d01010b": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  "2a864886f70d01010c": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-384" },
  "2a864886f70d01010d": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" },
  "2a864886f70d010105": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-1" },
  "2a864886f70d01010e": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-224" },
  "2a864886f70d010104": { name: "RSASSA-PKCS1-v1_5", hash: "MD5" },
  "2a864886f70d010102": { name: "RSASSA-PKCS1-v1_5", hash: "MD2" },
  "2b6570": { name: "Ed25519" },
};

/**
 * Hashes too weak to sign a CSR with: MD2 and MD5 (broken), SHA-1 (chosen-prefix collisions),
 * SHA-224 (below the SHA-256 floor). Only SHA-256 or stronger, or Ed25519, is accepted.
 */
const WEAK_HASHES = new Set(["MD2", "MD5", "SHA-1", "SHA-224"]);

/**
 * Parses a PEM CSR, verifies its self-signature (proof of possession of the private key) and
 * checks its key against the policy. Rejects only with InvalidCsrError, whatever the input:
 * MALFORMED (not one PEM CSR, does not parse), AMBIGUOUS_SUBJECT (more than one CN),
 * WEAK_SIGNATURE (signed with MD5, SHA-1 or SHA-224), BAD_SIGNATURE, WEAK_KEY, UNSUPPORTED_KEY.
 *
 * Reads the DER directly, without @peculiar/x509 (which keeps asn1js, tsyringe and
 * reflect-metadata out of the Lambda bundles): the fields are located in the DER, the subject
 * name, the subjectAltName DNS names and RSA-PSS parameters are decoded by small readers, and the
 * signature is checked with Node's crypto (one key import instead of two through WebCrypto).
 */
export async function parseCsr(pem: string, options: ParseCsrOptions = {}): Promise<ParsedCsr> {
  const policy = options.keyPolicy ?? DEFAULT_KEY_POLICY;
  if (typeof pem !== "string" || pem.length > (options.maxLength ?? 16 * 1024)) {
    throw new InvalidCsrError("MALFORMED", "The CSR is missing or too long.");
  }
  const blocks = readPemBlocks(pem);
  const block = blocks?.[0];
  if (blocks?.length !== 1 || !block || !PEM_LABELS.has(block.label)) {
    throw new InvalidCsrError("MALFORMED", "Expected exactly one PEM block labelled CERTIFICATE REQUEST.");
  }
  const der = block.der;
  const parts = csrParts(der);
  if (!parts) throw new InvalidCsrError("MALFORMED", "The CSR is not a DER PKCS#10 request.");

  const subject = readDistinguishedName(parts.subjectNameDer);
  if (!subject) throw new InvalidCsrError("MALFORMED", "The CSR subject is not a DER Name.");
  if ((countNameFields(parts.subjectNameDer)?.commonName ?? 0) > 1) {
    throw new InvalidCsrError(
      "AMBIGUOUS_SUBJECT",
      "The CSR subject has more than one CN (common name); it must have exactly one.",
    );
  }
  const dnsNames = parts.attributes ? readCsrDnsNames(der, parts.attributes) : [];
  if (!dnsNames) throw new InvalidCsrError("MALFORMED", "The CSR attributes do not parse.");
  const signatureAlgorithm =
    parts.signatureOid === RSASSA_PSS
      ? parts.signatureParameters && readRsaPssParameters(parts.signatureParameters)
      : SIGNATURE_ALGORITHMS[parts.signatureOid];

  const hash =
    signatureAlgorithm && "hash" in signatureAlgorithm ? hashName(signatureAlgorithm.hash) : undefined;
  if (parts.signatureOid === RSASSA_PSS && signatureAlgorithm && hash === undefined) {
    throw new InvalidCsrError("WEAK_SIGNATURE", "The CSR's RSA-PSS signature names an unknown hash.");
  }
  if (hash !== undefined && WEAK_HASHES.has(hash)) {
    throw new InvalidCsrError(
      "WEAK_SIGNATURE",
      `The CSR is signed with ${hash}; sign it with SHA-256 or stronger (e.g. openssl req -sha256).`,
    );
  }

  let key: KeyObject;
  try {
    key = publicKeyObject(parts.spki);
  } catch (error) {
    throw new InvalidCsrError("MALFORMED", "The CSR public key does not parse.", { cause: error });
  }
  const keyAlgorithm = describePublicKey(key);
  const verdict = checkKeyPolicy(keyAlgorithm, policy);
  if (!verdict.allowed) throw new InvalidCsrError(verdict.reason, verdict.message);
  if (keyAlgorithm.type === "UNSUPPORTED") throw new InvalidCsrError("UNSUPPORTED_KEY", "Unsupported key.");

  if (!verifySignedStructure(der, signatureAlgorithm, key)) {
    throw new InvalidCsrError("BAD_SIGNATURE", "The CSR signature does not match its public key.");
  }

  const spki = new Uint8Array(parts.spki);
  return {
    subject,
    keyAlgorithm,
    publicKeySpkiDer: spki,
    publicKeyPem: toPem(spki, "PUBLIC KEY"),
    publicKeyFingerprint: sha256Hex(spki),
    dnsNames,
    pem: toPem(der, "CERTIFICATE REQUEST"),
  };
}

/** The hash name of a `{hash}` (a string or `{name}`), as the signature tables write it. */
function hashName(hash: unknown): string | undefined {
  const name = typeof hash === "string" ? hash : (hash as { name?: unknown } | undefined)?.name;
  return typeof name === "string" ? name : undefined;
}
