/**
 * A light certificate reader for the Lambda path (vending, JITR): names, validity, serial and
 * public key, read with Node's crypto and the DER readers, without @peculiar/x509. The emulator
 * and the CLI use parseCertificate (certificate.ts), which also reads extensions and checks
 * self-signatures.
 */
import { X509Certificate } from "node:crypto";
import { certificateFields, isSingleDerSequence, readTime } from "./der.ts";
import { type DistinguishedName, readDistinguishedName } from "./distinguished-name-reader.ts";
import { InvalidCertificateError } from "./errors.ts";
import { describePublicKey, type PublicKeyAlgorithm, sha256Hex } from "./keys.ts";
import { readPemBlocks, toPem } from "./pem.ts";

/** What readCertificate tells about a certificate: the fields ParsedCertificate shares with it. */
export type CertificateFacts = {
  /** The AWS IoT certificate id: lowercase hex SHA-256 of the DER. */
  id: string;
  /** The certificate in normalized PEM. */
  pem: string;
  der: Uint8Array;
  subject: DistinguishedName;
  issuer: DistinguishedName;
  /**
   * The serial number in its one canonical form (serialNumberHex): lowercase hex of the value in
   * whole bytes, e.g. `09a4...`, `80...`: what `openssl x509 -serial` prints, lowercased.
   */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  keyAlgorithm: PublicKeyAlgorithm;
  publicKeySpkiDer: Uint8Array;
  /** Lowercase hex SHA-256 of the SPKI DER (the same for a CSR and the certificate issued from it). */
  publicKeyFingerprint: string;
};

/** Longest PEM text accepted, in characters. */
export const MAX_CERTIFICATE_PEM_LENGTH = 256 * 1024;

/** The lowercase hex SHA-256 of a certificate's DER: the AWS IoT certificate id. */
export function certificateIdOf(der: Uint8Array): string {
  return sha256Hex(der);
}

/**
 * The DER of every CERTIFICATE block of a PEM text, in order (other labels skipped). Throws
 * InvalidCertificateError for text that is too long, malformed PEM, or a block that is not
 * exactly one DER SEQUENCE.
 */
export function readCertificateDers(text: string): Uint8Array[] {
  if (typeof text !== "string" || text.length > MAX_CERTIFICATE_PEM_LENGTH) {
    throw new InvalidCertificateError("MALFORMED", "The certificate is missing or too long.");
  }
  const blocks = readPemBlocks(text);
  if (!blocks) throw new InvalidCertificateError("MALFORMED", "The certificate PEM is malformed.");
  const ders = blocks.filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
  for (const der of ders) {
    if (!isSingleDerSequence(der))
      throw new InvalidCertificateError("MALFORMED", "The certificate is not valid DER.");
  }
  return ders;
}

/**
 * Reads one PEM certificate (the first one if `pem` is a bundle): the same values parseCertificate
 * gives for these fields, without extensions or signature checks. Throws only
 * InvalidCertificateError (MALFORMED), whatever the input.
 */
export function readCertificate(pem: string): CertificateFacts {
  const der = readCertificateDers(pem)[0];
  if (!der) throw new InvalidCertificateError("MALFORMED", "Expected a PEM block labelled CERTIFICATE.");
  const fields = certificateFields(der);
  const subject = fields && readDistinguishedName(fields.subjectDer);
  const issuer = fields && readDistinguishedName(fields.issuerDer);
  const notBefore = fields && readTime(fields.notBefore.tag, fields.notBefore.content);
  const notAfter = fields && readTime(fields.notAfter.tag, fields.notAfter.content);
  if (!fields || !subject || !issuer || !notBefore || !notAfter) {
    throw new InvalidCertificateError("MALFORMED", "The certificate does not parse as X.509.");
  }
  let certificate: X509Certificate;
  try {
    // OpenSSL's parse: the whole certificate is well-formed, and the key object for describing it.
    certificate = new X509Certificate(der);
  } catch (error) {
    throw new InvalidCertificateError("MALFORMED", "The certificate does not parse as X.509.", {
      cause: error,
    });
  }
  let keyAlgorithm: PublicKeyAlgorithm;
  try {
    keyAlgorithm = describePublicKey(certificate.publicKey);
  } catch {
    keyAlgorithm = { type: "UNSUPPORTED", name: "unknown" };
  }
  const spki = new Uint8Array(fields.spki);
  return {
    id: certificateIdOf(der),
    pem: toPem(der, "CERTIFICATE"),
    der,
    subject,
    issuer,
    serialNumber: serialNumberHex(fields.serialNumber),
    notBefore,
    notAfter,
    keyAlgorithm,
    publicKeySpkiDer: spki,
    publicKeyFingerprint: sha256Hex(spki),
  };
}

/**
 * The canonical text of a certificate serial number, from the content octets of its DER INTEGER:
 * lowercase hex of the value in whole bytes (an even number of digits, so a first byte below 0x10
 * keeps its leading 0: `09a4...`), without the 00 sign byte DER puts before a high first byte and
 * without the extra leading zero bytes some encoders write. That is `openssl x509 -serial`'s
 * `serial=09A4...` lowercased, and the `Serial Number: 92:12:85:cb:...` of AWS IoT's X.509
 * documentation without the colons; lowercase like certificate ids. A negative serial (invalid
 * under RFC 5280 but seen in the wild) is `-` and its magnitude, as openssl prints it.
 */
export function serialNumberHex(content: Uint8Array): string {
  if (content.length === 0) return "00";
  const negative = (content[0]! & 0x80) !== 0;
  let value = BigInt(`0x${Buffer.from(content).toString("hex")}`);
  if (negative) value = (1n << BigInt(content.length * 8)) - value;
  const hex = value.toString(16);
  const even = hex.length % 2 === 0 ? hex : `0${hex}`;
  return negative ? `-${even}` : even;
}
