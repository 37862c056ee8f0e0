import { createHash, randomBytes, sign } from "node:crypto";
import { ValidationError } from "../errors.ts";
import { certificateIdOf, parseCertificate } from "./certificate.ts";
import {
  certificateSubjectDer,
  isSingleDerSequence,
  sequence,
  spkiAlgorithmOid,
  spkiKeyBits,
  time,
  tlv,
  unsignedInteger,
} from "./der.ts";
import { type SubjectInput, toX509Name } from "./distinguished-name.ts";
import { InvalidKeyError } from "./errors.ts";
import { createKeyPair, importSigningKey, type KeyPairAlgorithm, type SigningKey } from "./keys.ts";
import { readPemBlocks, toPem } from "./pem.ts";
import { x509 } from "./x509.ts";

export { createKeyPair, type KeyPairAlgorithm } from "./keys.ts";

/** Key usage bits by name (RFC 5280 4.2.1.3). */
export type KeyUsageName =
  | "digitalSignature"
  | "nonRepudiation"
  | "keyEncipherment"
  | "dataEncipherment"
  | "keyAgreement"
  | "keyCertSign"
  | "cRLSign";

/** Optional extensions of an issued certificate. */
export type IssueExtensions = {
  /** Default: keyCertSign + cRLSign for a CA; digitalSignature (+ keyEncipherment for RSA) otherwise. */
  keyUsage?: KeyUsageName[];
  /** Default: none for a CA, clientAuth otherwise. */
  extendedKeyUsage?: Array<"clientAuth" | "serverAuth">;
  /** subjectAltName DNS names (server certificates). */
  dnsNames?: string[];
  /** subjectAltName IP addresses (server certificates). */
  ipAddresses?: string[];
};

/** What to put into a certificate. */
export type IssueRequest = {
  /** The subject's public key: SPKI DER bytes or a `PUBLIC KEY` PEM. */
  subjectPublicKey: Uint8Array | string;
  subject: SubjectInput;
  /** Validity in days from notBefore (default 365). Ignored when notAfter is given. */
  days?: number;
  /** Default: one minute ago, to tolerate clocks that are slightly behind. */
  notBefore?: Date;
  notAfter?: Date;
  /** Hex serial number (colons allowed); default 16 random bytes, positive. */
  serialNumber?: string;
  isCa?: boolean;
  /** basicConstraints pathLenConstraint of a CA certificate. */
  pathLength?: number;
  extensions?: IssueExtensions;
};

/** An issued certificate. */
export type IssuedCertificate = {
  certificatePem: string;
  /** Lowercase hex SHA-256 of the DER (the AWS IoT certificate id). */
  certificateId: string;
  /** Canonical form (serialNumberHex), as readCertificate / parseCertificate read it back. */
  serialNumber: string;
  der: Uint8Array;
  notBefore: Date;
  notAfter: Date;
};

/** A CA: its certificate and unencrypted private key, PEM. */
export type CaKeyMaterial = { certPem: string; privateKeyPem: string };

const DAY_MS = 24 * 60 * 60 * 1000;
const BACKDATE_MS = 60 * 1000;

const KEY_USAGE_FLAGS: Record<KeyUsageName, x509.KeyUsageFlags> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  nonRepudiation: x509.KeyUsageFlags.nonRepudiation,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  dataEncipherment: x509.KeyUsageFlags.dataEncipherment,
  keyAgreement: x509.KeyUsageFlags.keyAgreement,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
};

const EKU = { clientAuth: x509.ExtendedKeyUsage.clientAuth, serverAuth: x509.ExtendedKeyUsage.serverAuth };

/** A random positive serial number: 16 bytes, hex, the top bits set so its DER length is fixed. */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString("hex");
}

/**
 * Signs certificates with one CA. Create it once and call issue() for each certificate: the CA
 * key is imported once (a Node KeyObject for signing, a non-extractable WebCrypto CryptoKey
 * alongside), and the issuer name, the signature algorithm and the constant extensions are
 * encoded once. The TBSCertificate is written directly as DER and signed with Node's
 * crypto.sign: about 150 us per certificate instead of about 4 ms through
 * X509CertificateGenerator (which re-parses every extension and the result).
 */
export class CertificateIssuer {
  private readonly extensionCache = new Map<string, Uint8Array[]>();
  private readonly nameCache = new Map<string, Uint8Array>();

  private constructor(
    /** The CA certificate, PEM. */
    readonly caCertPem: string,
    /** The CA certificate id (lowercase hex SHA-256 of its DER). */
    readonly caCertificateId: string,
    private readonly issuerNameDer: Uint8Array,
    private readonly caKeyId: string,
    private readonly signingKey: SigningKey,
  ) {}

  /**
   * Loads a CA. Throws InvalidCertificateError for a bad certificate and InvalidKeyError for a bad
   * key or a key that is not the certificate's.
   */
  static async create(ca: CaKeyMaterial): Promise<CertificateIssuer> {
    const parsed = await parseCertificate(ca.certPem);
    const signingKey = await importSigningKey(ca.privateKeyPem);
    if (!Buffer.from(signingKey.publicKeySpkiDer).equals(Buffer.from(parsed.publicKeySpkiDer))) {
      throw new InvalidKeyError("KEY_MISMATCH", "The private key does not belong to the CA certificate.");
    }
    const keyId = parsed.subjectKeyId ?? readSubjectKey(parsed.publicKeySpkiDer).keyId;
    const issuerNameDer = certificateSubjectDer(parsed.der);
    if (!issuerNameDer) throw new InvalidKeyError("MALFORMED", "Cannot read the CA subject name.");
    return new CertificateIssuer(parsed.pem, parsed.id, issuerNameDer, keyId, signingKey);
  }

  /**
   * Issues a certificate. The subject key is not re-validated (pass a key from parseCsr or
   * createKeyPair); throws ValidationError / InvalidKeyError for malformed requests.
   */
  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    const { spki, keyId, isRsa } = readSubjectKey(request.subjectPublicKey);
    const times = validity(request);
    const serialNumber = checkSerialNumber(request.serialNumber) ?? randomSerialNumber();
    const subjectDer = this.subjectName(request.subject);
    const extensions = [
      ...this.constantExtensions(request, isRsa),
      sequence(OID_SUBJECT_KEY_ID, tlv(0x04, tlv(0x04, Buffer.from(keyId, "hex")))),
      ...altNameExtension(request.extensions),
    ];
    const der = signCertificate({
      serialNumber,
      issuerNameDer: this.issuerNameDer,
      subjectNameDer: subjectDer,
      spki,
      extensions,
      signingKey: this.signingKey,
      ...times,
    });
    return {
      certificatePem: toPem(der, "CERTIFICATE"),
      certificateId: certificateIdOf(der),
      serialNumber,
      der,
      ...times,
    };
  }

  /** The subject Name DER; names given as strings (a fixed subject, like AWS IoT's) are cached. */
  private subjectName(subject: SubjectInput): Uint8Array {
    if (typeof subject !== "string") return new Uint8Array(toX509Name(subject).toArrayBuffer());
    let der = this.nameCache.get(subject);
    if (!der) {
      der = new Uint8Array(toX509Name(subject).toArrayBuffer());
      if (this.nameCache.size < 64) this.nameCache.set(subject, der);
    }
    return der;
  }

  /** basicConstraints, keyUsage, authorityKeyIdentifier and extKeyUsage: the same for many certificates. */
  private constantExtensions(request: IssueRequest, isRsa: boolean): Uint8Array[] {
    const isCa = request.isCa === true;
    const requested = request.extensions ?? {};
    const usages = requested.keyUsage ?? defaultKeyUsage(isCa, isRsa);
    const eku = requested.extendedKeyUsage ?? (isCa ? [] : ["clientAuth" as const]);
    const cacheKey = JSON.stringify([isCa, request.pathLength, usages, eku]);
    let cached = this.extensionCache.get(cacheKey);
    if (!cached) {
      const flags = usages.reduce((all, usage) => all | KEY_USAGE_FLAGS[usage], 0);
      const extensions: x509.Extension[] = [
        new x509.BasicConstraintsExtension(isCa, isCa ? request.pathLength : undefined, true),
        new x509.KeyUsagesExtension(flags, true),
        new x509.AuthorityKeyIdentifierExtension(this.caKeyId),
      ];
      if (eku.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(eku.map((u) => EKU[u])));
      cached = extensions.map((e) => new Uint8Array(e.rawData));
      if (this.extensionCache.size < 64) this.extensionCache.set(cacheKey, cached);
    }
    return cached;
  }
}

/** Issues one certificate. For many, create a CertificateIssuer once and reuse it. */
export async function issueCertificate(
  request: IssueRequest & { caCertPem: string; caPrivateKeyPem: string },
) {
  const issuer = await CertificateIssuer.create({
    certPem: request.caCertPem,
    privateKeyPem: request.caPrivateKeyPem,
  });
  return issuer.issue(request);
}

/** Creates a self-signed CA certificate with a new key pair. */
export async function createSelfSignedCa(params: {
  subject: SubjectInput;
  keyAlgorithm?: KeyPairAlgorithm;
  /** Validity in days (default 3650). */
  days?: number;
  pathLength?: number;
}): Promise<CaKeyMaterial & { publicKeyPem: string; certificateId: string }> {
  const keys = await createKeyPair(params.keyAlgorithm ?? "EC-P256");
  const signingKey = await importSigningKey(keys.privateKeyPem);
  const { spki, keyId } = readSubjectKey(signingKey.publicKeySpkiDer);
  const nameDer = new Uint8Array(toX509Name(params.subject).toArrayBuffer());
  const flags =
    x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature;
  const extensions = [
    new x509.BasicConstraintsExtension(true, params.pathLength, true),
    new x509.KeyUsagesExtension(flags, true),
    new x509.SubjectKeyIdentifierExtension(keyId),
  ].map((e) => new Uint8Array(e.rawData));
  const der = signCertificate({
    serialNumber: randomSerialNumber(),
    issuerNameDer: nameDer,
    subjectNameDer: nameDer,
    spki,
    extensions,
    signingKey,
    ...validity({ days: params.days ?? 3650 }),
  });
  return {
    certPem: toPem(der, "CERTIFICATE"),
    privateKeyPem: keys.privateKeyPem,
    publicKeyPem: keys.publicKeyPem,
    certificateId: certificateIdOf(der),
  };
}

/** Creates a PEM CSR signed with the given private key (proof of possession). */
export async function createCsr(params: {
  privateKeyPem: string;
  subject: SubjectInput;
  dnsNames?: string[];
}): Promise<string> {
  const signingKey = await importSigningKey(params.privateKeyPem);
  const extensions = params.dnsNames?.length
    ? [
        new x509.SubjectAlternativeNameExtension(
          params.dnsNames.map((value) => ({ type: "dns" as const, value })),
        ),
      ]
    : [];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: toX509Name(params.subject),
    keys: { privateKey: signingKey.privateKey, publicKey: signingKey.publicKey },
    signingAlgorithm: signingKey.signingAlgorithm,
    extensions,
  });
  return toPem(csr.rawData, "CERTIFICATE REQUEST");
}

function checkSerialNumber(serialNumber: string | undefined): string | undefined {
  if (serialNumber === undefined) return undefined;
  const hex = serialNumber.toLowerCase().replace(/:/g, "");
  if (!/^[0-9a-f]{1,40}$/.test(hex) || /^0+$/.test(hex)) {
    throw new ValidationError("The serial number must be 1-20 bytes of hex and not zero.");
  }
  // The canonical form certificate readers give back (serialNumberHex): whole bytes, no leading 00.
  return (hex.length % 2 === 0 ? hex : `0${hex}`).replace(/^(00)+(?=..)/, "");
}

/** AlgorithmIdentifier DER of each signature algorithm the issuer uses. */
const SIGNATURE_ALGORITHMS: Record<string, Uint8Array> = {
  "ECDSA/SHA-256": Uint8Array.from([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
  "ECDSA/SHA-384": Uint8Array.from([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]),
  "ECDSA/SHA-512": Uint8Array.from([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04]),
  "RSASSA-PKCS1-v1_5/SHA-256": Uint8Array.from([
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
  ]),
};
const OID_SUBJECT_KEY_ID = Uint8Array.from([0x06, 0x03, 0x55, 0x1d, 0x0e]);
const VERSION_3 = Uint8Array.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
const SPKI_EC = "2a8648ce3d0201";
const SPKI_RSA = "2a864886f70d010101";
const SPKI_RSA_PSS = "2a864886f70d01010a";

function defaultKeyUsage(isCa: boolean, isRsa: boolean): readonly KeyUsageName[] {
  if (isCa) return ["keyCertSign", "cRLSign", "digitalSignature"];
  return isRsa ? ["digitalSignature", "keyEncipherment"] : ["digitalSignature"];
}

function validity(request: Pick<IssueRequest, "days" | "notBefore" | "notAfter">): {
  notBefore: Date;
  notAfter: Date;
} {
  const wholeSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);
  const notBefore = wholeSeconds(request.notBefore?.getTime() ?? Date.now() - BACKDATE_MS);
  const days = request.days ?? 365;
  if (request.notAfter === undefined && !(Number.isFinite(days) && days > 0)) {
    throw new ValidationError("days must be a positive number.");
  }
  const notAfter = wholeSeconds(request.notAfter?.getTime() ?? notBefore.getTime() + days * DAY_MS);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime()) || notAfter <= notBefore) {
    throw new ValidationError("The validity period is invalid: notAfter must be after notBefore.");
  }
  if (notAfter.getUTCFullYear() > 9999) throw new ValidationError("notAfter is after the year 9999.");
  return { notBefore, notAfter };
}

function altNameExtension(requested: IssueExtensions | undefined): Uint8Array[] {
  const names = [
    ...(requested?.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(requested?.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  if (names.length === 0) return [];
  try {
    return [new Uint8Array(new x509.SubjectAlternativeNameExtension(names).rawData)];
  } catch (error) {
    throw new ValidationError("Invalid subjectAltName DNS name or IP address.", { cause: error });
  }
}

/** Writes the TBSCertificate, signs it with the CA key and returns the certificate DER. */
function signCertificate(fields: {
  serialNumber: string;
  issuerNameDer: Uint8Array;
  subjectNameDer: Uint8Array;
  spki: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  extensions: Uint8Array[];
  signingKey: SigningKey;
}): Uint8Array {
  const { signingAlgorithm, privateKeyObject } = fields.signingKey;
  const hash = (signingAlgorithm as { hash?: string }).hash ?? "SHA-256";
  const algorithmDer = SIGNATURE_ALGORITHMS[`${signingAlgorithm.name}/${hash}`];
  if (!algorithmDer)
    throw new InvalidKeyError("UNSUPPORTED_KEY", `Cannot sign with ${signingAlgorithm.name}.`);
  const tbs = sequence(
    VERSION_3,
    unsignedInteger(Buffer.from(fields.serialNumber, "hex")),
    algorithmDer,
    fields.issuerNameDer,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subjectNameDer,
    fields.spki,
    tlv(0xa3, sequence(...fields.extensions)),
  );
  // Node's sign: synchronous (about 40 us for P-256, less than a WebCrypto round trip through the
  // thread pool) and ECDSA signatures come out DER-encoded as X.509 wants them.
  const signature = sign(hash.replace("-", "").toLowerCase(), tbs, privateKeyObject);
  return sequence(tbs, algorithmDer, tlv(0x03, Uint8Array.of(0), signature));
}

/**
 * Reads a subject public key (SPKI DER or `PUBLIC KEY` PEM) and its key identifier (SHA-1 of the
 * key bits, RFC 5280 4.2.1.2 method 1). Cheap on purpose: the key's curve and size were checked
 * when its CSR was parsed.
 */
function readSubjectKey(input: Uint8Array | string): { spki: Uint8Array; keyId: string; isRsa: boolean } {
  const der =
    typeof input === "string" ? readPemBlocks(input)?.find((b) => b.label === "PUBLIC KEY")?.der : input;
  const bits = der instanceof Uint8Array && isSingleDerSequence(der) ? spkiKeyBits(der) : undefined;
  if (!der || !bits) throw new InvalidKeyError("MALFORMED", "The subject public key is not SPKI DER or PEM.");
  const oid = spkiAlgorithmOid(der);
  if (oid !== SPKI_EC && oid !== SPKI_RSA && oid !== SPKI_RSA_PSS) {
    throw new InvalidKeyError("UNSUPPORTED_KEY", "Only EC and RSA keys can be certified.");
  }
  return { spki: der, keyId: createHash("sha1").update(bits).digest("hex"), isRsa: oid !== SPKI_EC };
}
