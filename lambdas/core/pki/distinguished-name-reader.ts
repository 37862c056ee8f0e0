/**
 * Reading X.501 names straight from DER, without @peculiar/x509: the Lambda path (CSR subjects,
 * JITR certificate subjects) imports this file only, so asn1js, tsyringe and reflect-metadata stay
 * out of its bundles. The result is the one `readName` (x509-based, distinguished-name.ts) gives
 * for the same name, `text` included; test/core/pki/distinguished-name-reader.test.ts checks that.
 */
import { children, readHeader } from "./der.ts";

/**
 * The subject or issuer fields AWS IoT exposes as JITP certificate parameters
 * (`AWS::IoT::Certificate::CommonName`, `::Country`, ...), plus locality and e-mail.
 * Where a name repeats an attribute, the first value is kept; `text` has them all.
 */
export type DistinguishedName = {
  commonName?: string;
  country?: string;
  stateName?: string;
  locality?: string;
  organization?: string;
  organizationalUnit?: string;
  serialNumber?: string;
  distinguishedNameQualifier?: string;
  emailAddress?: string;
  /** The whole name as a string, e.g. `CN=dev-1, O=Acme, C=US`. */
  text: string;
};

/** The named fields of a DistinguishedName. */
export type DistinguishedNameField = keyof Omit<DistinguishedName, "text">;

/** The attribute type (dotted OID) of each field. */
export const NAME_FIELD_OIDS: Readonly<Record<DistinguishedNameField, string>> = Object.freeze({
  country: "2.5.4.6",
  stateName: "2.5.4.8",
  locality: "2.5.4.7",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  commonName: "2.5.4.3",
  serialNumber: "2.5.4.5",
  distinguishedNameQualifier: "2.5.4.46",
  emailAddress: "1.2.840.113549.1.9.1",
});

const FIELD_BY_OID = new Map<string, DistinguishedNameField>(
  Object.entries(NAME_FIELD_OIDS).map(([field, oid]) => [oid, field as DistinguishedNameField]),
);

/** The short names `text` uses (those of @peculiar/x509); other types are written as dotted OIDs. */
const SHORT_NAMES: Readonly<Record<string, string>> = {
  "2.5.4.3": "CN",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.6": "C",
  "0.9.2342.19200300.100.1.25": "DC",
  "1.2.840.113549.1.9.1": "E",
  "2.5.4.42": "G",
  "2.5.4.43": "I",
  "2.5.4.4": "SN",
  "2.5.4.12": "T",
};

/** One attribute of a name: type (dotted OID) and value as text. */
type NameAttribute = { oid: string; value: string; raw: boolean };

/**
 * Reads a DER Name (RDNSequence: SEQUENCE OF SET OF SEQUENCE { type OID, value }) into the
 * DistinguishedName shape. DirectoryString values (UTF8String, PrintableString, IA5String,
 * TeletexString, BMPString, UniversalString) are decoded; any other value is kept as the hex of
 * its DER (the field holds the hex, `text` `#hex`, as RFC 4514 writes it). Returns undefined when
 * `der` is not exactly one well-formed Name.
 */
export function readDistinguishedName(der: Uint8Array): DistinguishedName | undefined {
  const rdns = readNameAttributes(der);
  if (!rdns) return undefined;
  const result: DistinguishedName = { text: "" };
  const texts: string[] = [];
  for (const rdn of rdns) {
    const parts: string[] = [];
    for (const attribute of rdn) {
      const field = FIELD_BY_OID.get(attribute.oid);
      if (field !== undefined && result[field] === undefined) result[field] = attribute.value;
      const type = SHORT_NAMES[attribute.oid] ?? attribute.oid;
      parts.push(`${type}=${attribute.raw ? `#${attribute.value}` : escapeValue(attribute.value)}`);
    }
    texts.push(parts.join("+"));
  }
  result.text = texts.join(", ");
  return result;
}

/**
 * How many times each field occurs in a DER Name, counting every value (in separate RDNs or
 * together in a multi-valued one, `CN=a+CN=b`); undefined when `der` is not a Name. A field that
 * appears more than once is ambiguous: DistinguishedName keeps only the first value.
 */
export function countNameFields(
  der: Uint8Array,
): Partial<Record<DistinguishedNameField, number>> | undefined {
  const rdns = readNameAttributes(der);
  if (!rdns) return undefined;
  const counts: Partial<Record<DistinguishedNameField, number>> = {};
  for (const attribute of rdns.flat()) {
    const field = FIELD_BY_OID.get(attribute.oid);
    if (field !== undefined) counts[field] = (counts[field] ?? 0) + 1;
  }
  return counts;
}

/** The attributes of each RDN of a DER Name, in order; undefined when it is not one well-formed Name. */
function readNameAttributes(der: Uint8Array): NameAttribute[][] | undefined {
  const outer = readHeader(der, 0);
  if (outer?.tag !== 0x30 || outer.end !== der.length) return undefined;
  const rdns = children(der, outer);
  if (!rdns) return undefined;
  const result: NameAttribute[][] = [];
  for (const rdn of rdns) {
    if (rdn.tag !== 0x31) return undefined;
    const atvs = children(der, rdn);
    if (!atvs) return undefined;
    const attributes: NameAttribute[] = [];
    for (const atv of atvs) {
      const attribute = readAttribute(der, atv);
      if (!attribute) return undefined;
      attributes.push(attribute);
    }
    result.push(attributes);
  }
  return result;
}

function readAttribute(der: Uint8Array, atv: ReturnType<typeof readHeader>): NameAttribute | undefined {
  if (atv?.tag !== 0x30) return undefined;
  const [type, value, ...rest] = children(der, atv) ?? [];
  if (type?.tag !== 0x06 || value === undefined || rest.length > 0) return undefined;
  const oid = readOid(der.subarray(type.contentStart, type.end));
  if (oid === undefined) return undefined;
  const content = der.subarray(value.contentStart, value.end);
  const text = decodeString(value.tag, content);
  if (text === null) return undefined;
  if (text !== undefined) return { oid, value: text, raw: false };
  const whole = der.subarray(value.contentStart - value.headerLength, value.end);
  return { oid, value: Buffer.from(whole).toString("hex"), raw: true };
}

/**
 * Decodes a string value by its universal tag: the text, undefined for a tag that is not a
 * DirectoryString or IA5String, null for content that cannot be one (odd BMPString length).
 */
function decodeString(tag: number, content: Uint8Array): string | undefined | null {
  switch (tag) {
    case 0x0c: // UTF8String; bytes that are not UTF-8 are read as Latin-1, as asn1js does
      try {
        return UTF8.decode(content);
      } catch {
        return Buffer.from(content).toString("latin1");
      }
    case 0x13: // PrintableString
    case 0x14: // TeletexString (T61), read as Latin-1
    case 0x16: // IA5String
      return Buffer.from(content).toString("latin1");
    case 0x1e: {
      // BMPString: UTF-16BE code units
      if (content.length % 2 !== 0) return null;
      let text = "";
      for (let i = 0; i < content.length; i += 2)
        text += String.fromCharCode(content[i]! * 256 + content[i + 1]!);
      return text;
    }
    case 0x1c: {
      // UniversalString: UCS-4BE code points
      if (content.length % 4 !== 0) return null;
      let text = "";
      for (let i = 0; i < content.length; i += 4) {
        const code =
          ((content[i]! << 24) | (content[i + 1]! << 16) | (content[i + 2]! << 8) | content[i + 3]!) >>> 0;
        if (code > 0x10ffff) return null;
        text += String.fromCodePoint(code);
      }
      return text;
    }
    default:
      return undefined;
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * RFC 4514-style escaping, exactly as @peculiar/x509's Name.toString does it (so `text` stays
 * the same): `,+"\<>;` escaped, a leading space or `#` and a trailing space escaped, and the
 * first CR, LF or TAB written as `\XX`.
 */
function escapeValue(value: string): string {
  return value
    .replace(/([,+"\\<>;])/g, "\\$1")
    .replace(/^([ #])/, "\\$1")
    .replace(/([ ]$)/, "\\$1")
    .replace(/([\r\n\t])/, (char) => `\\${char.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`);
}

/**
 * Longest sub-identifier read, in content bytes: 20 bytes of 7 bits hold 140 bits, enough for
 * the 128-bit UUID arcs of `2.25.*` (the longest arcs in use). A longer arc made readOid
 * quadratic (a 190 KB arc in a certificate name took seconds; test/core/pki/der-fuzz.test.ts).
 */
const MAX_ARC_BYTES = 20;

/**
 * The dotted form of an OBJECT IDENTIFIER's content bytes, or undefined when they are not a
 * valid encoding (empty, ending inside a sub-identifier, or an arc over MAX_ARC_BYTES bytes).
 */
export function readOid(content: Uint8Array): string | undefined {
  if (content.length === 0 || (content[content.length - 1]! & 0x80) !== 0) return undefined;
  const arcs: string[] = [];
  let value = 0n;
  let arcBytes = 0;
  for (const byte of content) {
    if (++arcBytes > MAX_ARC_BYTES) return undefined;
    value = (value << 7n) | BigInt(byte & 0x7f);
    if (byte & 0x80) continue;
    arcBytes = 0;
    if (arcs.length === 0) {
      const first = value < 40n ? 0n : value < 80n ? 1n : 2n;
      arcs.push(first.toString(), (value - first * 40n).toString());
    } else {
      arcs.push(value.toString());
    }
    value = 0n;
  }
  return arcs.join(".");
}
