/**
 * The parts of a PKCS#10 request the Lambda path needs beyond its subject and key, read from DER
 * without @peculiar/x509: the DNS names of a subjectAltName extension request, and RSA-PSS
 * signature parameters.
 */
import { children, type DerHeader, readHeader } from "./der.ts";

/** extensionRequest (PKCS#9), 1.2.840.113549.1.9.14, as OID content hex. */
const EXTENSION_REQUEST = "2a864886f70d01090e";
/** subjectAltName, 2.5.29.17. */
const SUBJECT_ALT_NAME = "551d11";

/**
 * Reads the `[0]` attributes of a CertificationRequestInfo (SET OF Attribute { type OID, values
 * SET OF ANY }) and returns the dNSName entries of a subjectAltName in an extensionRequest
 * attribute, in order ([] when there is none). Undefined when the attributes are not a SET OF
 * Attribute; a subjectAltName whose content does not parse yields [].
 */
export function readCsrDnsNames(der: Uint8Array, attributes: DerHeader): string[] | undefined {
  const list = children(der, attributes);
  if (!list) return undefined;
  let dnsNames: string[] | undefined;
  for (const attribute of list) {
    if (attribute.tag !== 0x30) return undefined;
    const [type, values, ...rest] = children(der, attribute) ?? [];
    if (type?.tag !== 0x06 || values?.tag !== 0x31 || rest.length > 0) return undefined;
    const valueList = children(der, values);
    if (!valueList) return undefined;
    if (hex(der, type) !== EXTENSION_REQUEST) continue;
    for (const extensions of valueList) {
      dnsNames ??= sanDnsNames(der, extensions);
    }
  }
  return dnsNames ?? [];
}

/** dNSNames of the subjectAltName in Extensions (SEQUENCE OF Extension), undefined if none. */
function sanDnsNames(der: Uint8Array, extensions: DerHeader): string[] | undefined {
  if (extensions.tag !== 0x30) return undefined;
  for (const extension of children(der, extensions) ?? []) {
    if (extension.tag !== 0x30) continue;
    const fields = children(der, extension) ?? [];
    const [id] = fields;
    const value = fields[fields.length - 1];
    if (id?.tag !== 0x06 || hex(der, id) !== SUBJECT_ALT_NAME) continue;
    if (value?.tag !== 0x04) return [];
    const names = readHeader(der, value.contentStart);
    if (names?.tag !== 0x30 || names.end !== value.end) return [];
    const generalNames = children(der, names);
    if (!generalNames) return [];
    return generalNames
      .filter((name) => name.tag === 0x82) // dNSName [2] IMPLICIT IA5String
      .map((name) => Buffer.from(der.subarray(name.contentStart, name.end)).toString("latin1"));
  }
  return undefined;
}

/** WebCrypto names of the hashes RSA-PSS parameters may name, by OID content hex. */
const HASHES: Record<string, string> = {
  "2b0e03021a": "SHA-1",
  "608648016503040201": "SHA-256",
  "608648016503040202": "SHA-384",
  "608648016503040203": "SHA-512",
};

/**
 * Reads RSASSA-PSS-params (RFC 4055: SEQUENCE { [0] hashAlgorithm DEFAULT sha1, [1] maskGen,
 * [2] saltLength DEFAULT 20, [3] trailerField }) into the `{name, hash, saltLength}` shape
 * verifySignedStructure takes. Undefined when they do not parse; `hash` is absent for a hash
 * it does not know (the signature then does not verify).
 */
export function readRsaPssParameters(
  parameters: Uint8Array,
): { name: "RSA-PSS"; hash?: { name: string }; saltLength: number } | undefined {
  const outer = readHeader(parameters, 0);
  if (outer?.tag !== 0x30 || outer.end !== parameters.length) return undefined;
  let hash: string | undefined = "SHA-1";
  let saltLength = 20;
  const fields = children(parameters, outer);
  if (!fields) return undefined;
  for (const field of fields) {
    const inner = readHeader(parameters, field.contentStart);
    if (!inner || inner.end !== field.end) return undefined;
    if (field.tag === 0xa0) {
      const oid = inner.tag === 0x30 ? readHeader(parameters, inner.contentStart) : undefined;
      if (oid?.tag !== 0x06) return undefined;
      hash = HASHES[hex(parameters, oid)];
    } else if (field.tag === 0xa2) {
      if (inner.tag !== 0x02 || inner.length < 1 || inner.length > 4) return undefined;
      saltLength = 0;
      for (let i = inner.contentStart; i < inner.end; i++) saltLength = saltLength * 256 + parameters[i]!;
    } else if (field.tag !== 0xa1 && field.tag !== 0xa3) {
      // Only [0]-[3] exist; anything else is a corrupted (unsigned) parameter, not one to skip.
      return undefined;
    }
  }
  return { name: "RSA-PSS", ...(hash ? { hash: { name: hash } } : {}), saltLength };
}

function hex(der: Uint8Array, header: DerHeader): string {
  return Buffer.from(der.subarray(header.contentStart, header.end)).toString("hex");
}
