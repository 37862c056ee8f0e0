import {
  type CertificateFacts,
  certificateIdOf,
  readCertificateDers,
  serialNumberHex,
} from "./certificate-reader.ts";
import { certificateFields } from "./der.ts";
import { readName } from "./distinguished-name.ts";
import { InvalidCertificateError } from "./errors.ts";
import { describePublicKey, type PublicKeyAlgorithm, publicKeyObject, sha256Hex } from "./keys.ts";
import { toPem } from "./pem.ts";
import { verifySignedStructure } from "./signature.ts";
import { x509 } from "./x509.ts";

/**
 * An X.509 certificate's facts as AWS IoT and the JITP templates use them. Decoded with
 * @peculiar/x509 (for the emulator and the CLI); the Lambda path uses readCertificate
 * (certificate-reader.ts), which gives the same values for the fields it shares.
 */
export type ParsedCertificate = CertificateFacts & {
  /** Issuer equals subject and the certificate's own key verifies its signature. */
  isSelfSigned: boolean;
  /** basicConstraints cA is true. */
  isCa: boolean;
  /** The basicConstraints extension, when present. */
  basicConstraints?: { ca: boolean; pathLength?: number };
  /** subjectKeyIdentifier, lowercase hex, when present. */
  subjectKeyId?: string;
  /** authorityKeyIdentifier keyIdentifier, lowercase hex, when present. */
  authorityKeyId?: string;
};

export { certificateIdOf };

/**
 * Splits a PEM bundle (a chain, a CA file) into its certificates, as normalized PEM strings.
 * Blocks with other labels are skipped. Throws InvalidCertificateError for malformed PEM.
 */
export function splitPemBundle(text: string): string[] {
  return readCertificateDers(text).map((der) => toPem(der, "CERTIFICATE"));
}

/**
 * Parses one PEM certificate (the first one if `pem` is a bundle). Rejects only with
 * InvalidCertificateError, whatever the input.
 */
export async function parseCertificate(pem: string): Promise<ParsedCertificate> {
  const der = readCertificateDers(pem)[0];
  if (!der) throw new InvalidCertificateError("MALFORMED", "Expected a PEM block labelled CERTIFICATE.");
  const certificate = decode(der);
  return describe(certificate, der);
}

/** Parses every certificate of a PEM bundle, in order. */
export async function parseCertificateBundle(text: string): Promise<ParsedCertificate[]> {
  return Promise.all(readCertificateDers(text).map((der) => describe(decode(der), der)));
}

/**
 * True when the CA certificate's key verifies the certificate's signature and the certificate's
 * issuer name is the CA's subject name. False for unsupported signature algorithms.
 * Throws InvalidCertificateError when either input does not parse.
 */
export async function verifySignedBy(certPem: string, caCertPem: string): Promise<boolean> {
  const certDer = readCertificateDers(certPem)[0];
  const caDer = readCertificateDers(caCertPem)[0];
  if (!certDer || !caDer) throw new InvalidCertificateError("MALFORMED", "Expected PEM certificates.");
  const certificate = decode(certDer);
  const ca = decode(caDer);
  if (!sameName(certificate.issuerName, ca.subjectName)) return false;
  return verifySignature(certificate, certDer, new Uint8Array(ca.publicKey.rawData));
}

/** Signature check with Node's crypto; false for keys or algorithms it cannot handle. */
function verifySignature(
  certificate: x509.X509Certificate,
  der: Uint8Array,
  signerSpki: Uint8Array,
): boolean {
  try {
    return verifySignedStructure(der, certificate.signatureAlgorithm, publicKeyObject(signerSpki));
  } catch {
    return false;
  }
}

function sameName(a: x509.Name, b: x509.Name): boolean {
  try {
    return (
      Buffer.from(a.toArrayBuffer()).equals(Buffer.from(b.toArrayBuffer())) || a.toString() === b.toString()
    );
  } catch {
    return false;
  }
}

function decode(der: Uint8Array): x509.X509Certificate {
  try {
    const certificate = new x509.X509Certificate(der);
    // Touch the lazily decoded parts so that a broken certificate fails here, typed.
    void certificate.subjectName.toString();
    void certificate.issuerName.toString();
    void certificate.publicKey.rawData;
    void certificate.notAfter;
    void certificate.extensions;
    return certificate;
  } catch (error) {
    throw new InvalidCertificateError("MALFORMED", "The certificate does not parse as X.509.", {
      cause: error,
    });
  }
}

async function describe(certificate: x509.X509Certificate, der: Uint8Array): Promise<ParsedCertificate> {
  let parsed: Omit<ParsedCertificate, "isSelfSigned">;
  try {
    const spki = new Uint8Array(certificate.publicKey.rawData);
    let keyAlgorithm: PublicKeyAlgorithm;
    try {
      keyAlgorithm = describePublicKey(spki);
    } catch {
      keyAlgorithm = { type: "UNSUPPORTED", name: "unknown" };
    }
    const basic = certificate.getExtension(x509.BasicConstraintsExtension);
    const ski = certificate.getExtension(x509.SubjectKeyIdentifierExtension);
    const aki = certificate.getExtension(x509.AuthorityKeyIdentifierExtension);
    parsed = {
      id: certificateIdOf(der),
      pem: toPem(der, "CERTIFICATE"),
      der,
      subject: readName(certificate.subjectName),
      issuer: readName(certificate.issuerName),
      serialNumber: serialNumberHex(
        // The DER INTEGER's own octets; @peculiar/x509's hex drops a 00 sign byte, which would make
        // a high first byte read as negative. Its hex is a positive magnitude, hence the 00.
        certificateFields(der)?.serialNumber ?? Buffer.from(`00${certificate.serialNumber}`, "hex"),
      ),
      notBefore: certificate.notBefore,
      notAfter: certificate.notAfter,
      keyAlgorithm,
      publicKeySpkiDer: spki,
      publicKeyFingerprint: sha256Hex(spki),
      isCa: basic?.ca === true,
      ...(basic
        ? {
            basicConstraints: {
              ca: basic.ca,
              ...(basic.pathLength === undefined ? {} : { pathLength: basic.pathLength }),
            },
          }
        : {}),
      ...(ski ? { subjectKeyId: ski.keyId.toLowerCase() } : {}),
      ...(aki?.keyId ? { authorityKeyId: aki.keyId.toLowerCase() } : {}),
    };
  } catch (error) {
    throw new InvalidCertificateError("MALFORMED", "The certificate does not parse as X.509.", {
      cause: error,
    });
  }
  const isSelfSigned =
    sameName(certificate.subjectName, certificate.issuerName) &&
    verifySignature(certificate, der, parsed.publicKeySpkiDer);
  return { ...parsed, isSelfSigned };
}
