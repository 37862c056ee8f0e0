/**
 * X.509 for iot-onramp: parse and verify CSRs and certificates, create keys, CAs, CSRs and
 * certificates. Pure functions over @peculiar/x509 and WebCrypto; no AWS SDK.
 */
export * from "./certificate.ts";
export {
  type CertificateFacts,
  MAX_CERTIFICATE_PEM_LENGTH,
  readCertificate,
  readCertificateDers,
} from "./certificate-reader.ts";
export * from "./csr.ts";
export * from "./distinguished-name.ts";
export { readDistinguishedName } from "./distinguished-name-reader.ts";
export * from "./errors.ts";
export * from "./issue.ts";
export {
  AWS_IOT_KEY_POLICY,
  checkKeyPolicy,
  DEFAULT_KEY_POLICY,
  describePublicKey,
  type EcCurve,
  formatKeyAlgorithm,
  importSigningKey,
  type KeyPairPem,
  type KeyPolicy,
  type PublicKeyAlgorithm,
  readPublicKey,
  type SigningKey,
  type SupportedKeyAlgorithm,
  sha256Hex,
} from "./keys.ts";
