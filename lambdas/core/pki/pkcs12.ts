/**
 * PKCS#12 (.p12) output of a server-made RSA key and its certificate, for device stacks that
 * import .p12 files. Written with node-forge's pkcs12 module (Node's crypto has no PKCS#12
 * writer). node-forge reads and writes RSA keys only, so EC keys are refused: this serves the
 * keys AWS IoT's CreateKeysAndCertificate makes (RSA 2048), not the P-256 keys devices make.
 *
 * Not exported from index.ts and not on any Lambda path: only the CLI imports it, so node-forge
 * (~290 KB minified) stays out of the Lambda bundles. See ARCHITECTURE.md, "X.509 readers".
 */
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import forge from "node-forge";
import { InvalidKeyError } from "./errors.ts";

export type Pkcs12Input = {
  /** PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` PEM, unencrypted; RSA only. */
  privateKeyPem: string;
  /** The key's certificate, PEM. */
  certificatePem: string;
  /** Protects the key bag (PBES2, AES-256-CBC, PBKDF2-HMAC-SHA256) and the MAC; may be empty. */
  password: string;
  /** The bags' friendlyName, e.g. the thing name. */
  friendlyName?: string;
};

/**
 * The DER of a PKCS#12 file holding the key (encrypted with the password) and its certificate,
 * as `openssl pkcs12 -export` makes it. Throws InvalidKeyError: UNSUPPORTED_KEY for a key that is
 * not RSA, KEY_MISMATCH when the certificate is not the key's, MALFORMED when either does not parse.
 */
export function toPkcs12(input: Pkcs12Input): Uint8Array {
  let keyType: string | undefined;
  let certificate: X509Certificate;
  try {
    keyType = createPrivateKey({ key: input.privateKeyPem, format: "pem" }).asymmetricKeyType;
    certificate = new X509Certificate(input.certificatePem);
  } catch (error) {
    throw new InvalidKeyError("MALFORMED", "The key or certificate does not parse (PEM expected).", {
      cause: error,
    });
  }
  if (keyType !== "rsa") {
    throw new InvalidKeyError(
      "UNSUPPORTED_KEY",
      `A .p12 is written for RSA keys made by AWS IoT only (got a ${keyType ?? "unknown"} key): node-forge, which writes it, has no EC support.`,
    );
  }
  if (!certificate.checkPrivateKey(createPrivateKey(input.privateKeyPem))) {
    throw new InvalidKeyError("KEY_MISMATCH", "The certificate is not the private key's.");
  }
  const key = forge.pki.privateKeyFromPem(input.privateKeyPem);
  const asn1 = withOriginalCertificateDer(new Uint8Array(certificate.raw), (cert, localKeyId) =>
    forge.pkcs12.toPkcs12Asn1(key, [cert], input.password, {
      algorithm: "aes256",
      prfAlgorithm: "sha256",
      count: 10_000,
      saltSize: 16,
      localKeyId,
      ...(input.friendlyName ? { friendlyName: input.friendlyName } : {}),
    } as Parameters<typeof forge.pkcs12.toPkcs12Asn1>[3]),
  );
  return new Uint8Array(Buffer.from(forge.asn1.toDer(asn1).getBytes(), "binary"));
}

type CertificateEncoder = { certificateToAsn1: (cert: forge.pki.Certificate) => forge.asn1.Asn1 };

/**
 * Runs `build` with node-forge encoding the certificate as its original DER. forge re-encodes a
 * certificate from the fields it parsed, and that is not the same DER: for an ECDSA-signed
 * certificate (the local stack's CA, many private CAs) it adds a NULL to the signature
 * AlgorithmIdentifier, which changes the certificate id and breaks its signature
 * (test/cli/device-vend-p12.test.ts caught it). So the bag gets a stand-in object, and forge's
 * encoder answers the original bytes for it for the duration of the (synchronous) call.
 */
function withOriginalCertificateDer<T>(
  der: Uint8Array,
  build: (cert: forge.pki.Certificate, localKeyId: string) => T,
): T {
  const original = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(der).toString("binary")));
  const standIn = {} as forge.pki.Certificate;
  const pki = forge.pki as unknown as CertificateEncoder;
  const encode = pki.certificateToAsn1;
  pki.certificateToAsn1 = (cert) => (cert === standIn ? original : encode(cert));
  try {
    // localKeyId pairs the key bag with the certificate bag: SHA-1 of the certificate, as openssl does.
    return build(standIn, createHash("sha1").update(der).digest("hex"));
  } finally {
    pki.certificateToAsn1 = encode;
  }
}
