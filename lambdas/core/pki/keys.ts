import { createHash, createPrivateKey, createPublicKey, type KeyObject, type webcrypto } from "node:crypto";
import { InvalidKeyError } from "./errors.ts";
import { readPemBlocks, toArrayBuffer, toPem } from "./pem.ts";

/** The elliptic curves X.509 device keys use. */
export type EcCurve = "P-256" | "P-384" | "P-521";

/** A key algorithm the pki functions can check and sign with. */
export type SupportedKeyAlgorithm = { type: "EC"; curve: EcCurve } | { type: "RSA"; modulusBits: number };

/** What a public key is; `UNSUPPORTED` carries Node's name for it (`ed25519`, `dsa`, ...). */
export type PublicKeyAlgorithm = SupportedKeyAlgorithm | { type: "UNSUPPORTED"; name: string };

/** Which device keys are accepted. */
export type KeyPolicy = {
  minRsaBits: number;
  maxRsaBits: number;
  ecCurves: readonly EcCurve[];
};

/** The project's default: RSA 2048-8192 bits, EC P-256 and P-384. */
export const DEFAULT_KEY_POLICY: KeyPolicy = Object.freeze({
  minRsaBits: 2048,
  maxRsaBits: 8192,
  ecCurves: Object.freeze(["P-256", "P-384"] as const),
});

/** What AWS IoT CreateCertificateFromCsr accepts: RSA >= 2048 bits, EC P-256, P-384 and P-521. */
export const AWS_IOT_KEY_POLICY: KeyPolicy = Object.freeze({
  minRsaBits: 2048,
  maxRsaBits: 8192,
  ecCurves: Object.freeze(["P-256", "P-384", "P-521"] as const),
});

/** Algorithms createKeyPair can generate. */
export type KeyPairAlgorithm = "EC-P256" | "EC-P384" | "RSA-2048";

/** A generated key pair: PKCS#8 private key and SPKI public key, both PEM. */
export type KeyPairPem = { privateKeyPem: string; publicKeyPem: string };

/** A private key imported once for signing certificates and CSRs. */
export type SigningKey = {
  privateKey: webcrypto.CryptoKey;
  /** The same key for Node's crypto.sign (the certificate issuing hot path). */
  privateKeyObject: KeyObject;
  publicKey: webcrypto.CryptoKey;
  algorithm: SupportedKeyAlgorithm;
  publicKeySpkiDer: Uint8Array;
  /** The WebCrypto parameters to sign with (hash matched to the curve, SHA-256 for RSA). */
  signingAlgorithm: webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;
};

const NODE_CURVES: Record<string, EcCurve> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
};

const CURVE_HASH: Record<EcCurve, string> = { "P-256": "SHA-256", "P-384": "SHA-384", "P-521": "SHA-512" };

/** Lowercase hex SHA-256 of some bytes. */
export function sha256Hex(bytes: Uint8Array | ArrayBuffer): string {
  return createHash("sha256")
    .update(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes))
    .digest("hex");
}

/** Tells the algorithm of a Node key object. */
function algorithmOf(key: KeyObject): PublicKeyAlgorithm {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") {
    const curve = NODE_CURVES[details.namedCurve ?? ""];
    return curve
      ? { type: "EC", curve }
      : { type: "UNSUPPORTED", name: `ec-${details.namedCurve ?? "unknown"}` };
  }
  if (key.asymmetricKeyType === "rsa") return { type: "RSA", modulusBits: details.modulusLength ?? 0 };
  return { type: "UNSUPPORTED", name: key.asymmetricKeyType ?? "unknown" };
}

/** Imports a SubjectPublicKeyInfo DER as a Node key object; throws InvalidKeyError if it does not parse. */
export function publicKeyObject(spkiDer: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  } catch (error) {
    throw new InvalidKeyError("MALFORMED", "The public key does not parse.", { cause: error });
  }
}

/** Describes a public key from its SubjectPublicKeyInfo DER; throws InvalidKeyError if it does not parse. */
export function describePublicKey(spkiDer: Uint8Array | KeyObject): PublicKeyAlgorithm {
  return algorithmOf(spkiDer instanceof Uint8Array ? publicKeyObject(spkiDer) : spkiDer);
}

/** A short text for a key algorithm, e.g. `EC P-256` or `RSA 2048`. */
export function formatKeyAlgorithm(algorithm: PublicKeyAlgorithm): string {
  if (algorithm.type === "EC") return `EC ${algorithm.curve}`;
  if (algorithm.type === "RSA") return `RSA ${algorithm.modulusBits}`;
  return algorithm.name;
}

/** Checks a key against a policy. */
export function checkKeyPolicy(
  algorithm: PublicKeyAlgorithm,
  policy: KeyPolicy,
): { allowed: true } | { allowed: false; reason: "WEAK_KEY" | "UNSUPPORTED_KEY"; message: string } {
  const text = formatKeyAlgorithm(algorithm);
  if (algorithm.type === "RSA") {
    if (algorithm.modulusBits < policy.minRsaBits) {
      return {
        allowed: false,
        reason: "WEAK_KEY",
        message: `RSA keys need at least ${policy.minRsaBits} bits (got ${text}).`,
      };
    }
    if (algorithm.modulusBits > policy.maxRsaBits) {
      return {
        allowed: false,
        reason: "UNSUPPORTED_KEY",
        message: `RSA keys may have at most ${policy.maxRsaBits} bits.`,
      };
    }
    return { allowed: true };
  }
  if (algorithm.type === "EC" && policy.ecCurves.includes(algorithm.curve)) return { allowed: true };
  const allowed = [`RSA >= ${policy.minRsaBits}`, ...policy.ecCurves.map((c) => `EC ${c}`)].join(", ");
  return {
    allowed: false,
    reason: "UNSUPPORTED_KEY",
    message: `Unsupported key ${text}; allowed: ${allowed}.`,
  };
}

/**
 * Reads a public key given as SPKI DER bytes or a `PUBLIC KEY` PEM; returns its DER.
 * Throws InvalidKeyError when it does not parse.
 */
export function readPublicKey(input: Uint8Array | string): Uint8Array {
  let der: Uint8Array | undefined;
  if (typeof input === "string") {
    der = readPemBlocks(input)?.find((b) => b.label === "PUBLIC KEY")?.der;
    if (!der) throw new InvalidKeyError("MALFORMED", "Expected a PEM block labelled PUBLIC KEY.");
  } else {
    der = input;
  }
  describePublicKey(der);
  return der;
}

/** Generates a key pair with WebCrypto. */
export async function createKeyPair(algorithm: KeyPairAlgorithm = "EC-P256"): Promise<KeyPairPem> {
  const params =
    algorithm === "RSA-2048"
      ? {
          name: "RSASSA-PKCS1-v1_5",
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: "SHA-256",
        }
      : { name: "ECDSA", namedCurve: algorithm === "EC-P384" ? "P-384" : "P-256" };
  const keys = (await crypto.subtle.generateKey(params, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const [pkcs8, spki] = await Promise.all([
    crypto.subtle.exportKey("pkcs8", keys.privateKey),
    crypto.subtle.exportKey("spki", keys.publicKey),
  ]);
  return { privateKeyPem: toPem(pkcs8, "PRIVATE KEY"), publicKeyPem: toPem(spki, "PUBLIC KEY") };
}

/**
 * Imports a private key (PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`
 * PEM, unencrypted) for signing. Throws InvalidKeyError for anything else.
 */
export async function importSigningKey(privateKeyPem: string): Promise<SigningKey> {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: privateKeyPem, format: "pem" });
  } catch (error) {
    throw new InvalidKeyError("MALFORMED", "The private key does not parse (unencrypted PEM expected).", {
      cause: error,
    });
  }
  const algorithm = algorithmOf(keyObject);
  if (algorithm.type === "UNSUPPORTED") {
    throw new InvalidKeyError("UNSUPPORTED_KEY", `Cannot sign with a ${algorithm.name} key; use EC or RSA.`);
  }
  const importParams: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams =
    algorithm.type === "EC"
      ? { name: "ECDSA", namedCurve: algorithm.curve }
      : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const signingAlgorithm: webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams =
    algorithm.type === "EC"
      ? { name: "ECDSA", hash: CURVE_HASH[algorithm.curve] }
      : (importParams as webcrypto.RsaHashedImportParams);
  const pkcs8 = new Uint8Array(keyObject.export({ type: "pkcs8", format: "der" }));
  const publicKeySpkiDer = new Uint8Array(createPublicKey(keyObject).export({ type: "spki", format: "der" }));
  const [privateKey, publicKey] = await Promise.all([
    crypto.subtle.importKey("pkcs8", toArrayBuffer(pkcs8), importParams, false, ["sign"]),
    crypto.subtle.importKey("spki", toArrayBuffer(publicKeySpkiDer), importParams, true, ["verify"]),
  ]);
  return {
    privateKey,
    privateKeyObject: keyObject,
    publicKey,
    algorithm,
    publicKeySpkiDer,
    signingAlgorithm,
  };
}
