/**
 * The few DER reads and writes the pki module needs beyond @peculiar/x509: checking framing,
 * locating fields in a certificate or CSR (the Lambda path reads them without @peculiar/x509),
 * and writing a TBSCertificate quickly (the issuance hot path).
 */

/** One TLV header. */
export type DerHeader = {
  tag: number;
  headerLength: number;
  contentStart: number;
  length: number;
  end: number;
};

/** Reads the TLV header at `offset` (single-byte tags, definite lengths up to 4 bytes). */
export function readHeader(der: Uint8Array, offset: number): DerHeader | undefined {
  const tag = der[offset];
  const first = der[offset + 1];
  if (tag === undefined || first === undefined) return undefined;
  let length = first;
  let headerLength = 2;
  if (first >= 0x80) {
    const lengthBytes = first & 0x7f;
    if (lengthBytes === 0 || lengthBytes > 4) return undefined;
    length = 0;
    for (let i = 0; i < lengthBytes; i++) {
      const byte = der[offset + 2 + i];
      if (byte === undefined) return undefined;
      length = length * 256 + byte;
    }
    headerLength += lengthBytes;
  }
  const contentStart = offset + headerLength;
  const end = contentStart + length;
  if (end > der.length) return undefined;
  return { tag, headerLength, contentStart, length, end };
}

/**
 * True when `der` is exactly one DER SEQUENCE (tag 0x30, definite length covering every byte):
 * trailing bytes would otherwise change the certificate id without changing the parsed content.
 */
export function isSingleDerSequence(der: Uint8Array): boolean {
  const header = readHeader(der, 0);
  return header !== undefined && header.tag === 0x30 && header.end === der.length;
}

/** The children of a constructed value, as [start, end) ranges of whole TLVs. */
export function children(der: Uint8Array, parent: DerHeader): DerHeader[] | undefined {
  const result: DerHeader[] = [];
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readHeader(der, offset);
    if (!child || child.end > parent.end) return undefined;
    result.push(child);
    offset = child.end;
  }
  return result;
}

/**
 * The subjectPublicKey bits of a SubjectPublicKeyInfo (what RFC 5280 method 1 hashes into a key
 * identifier), or undefined if `spki` is not SEQUENCE { SEQUENCE, BIT STRING }.
 */
export function spkiKeyBits(spki: Uint8Array): Uint8Array | undefined {
  const outer = readHeader(spki, 0);
  if (outer?.tag !== 0x30) return undefined;
  const [algorithm, bits] = children(spki, outer) ?? [];
  if (algorithm?.tag !== 0x30 || bits?.tag !== 0x03 || bits.length < 1) return undefined;
  return spki.subarray(bits.contentStart + 1, bits.end);
}

/** The exact DER bytes of a certificate's subject Name, or undefined if it is not a certificate. */
export function certificateSubjectDer(certificate: Uint8Array): Uint8Array | undefined {
  const outer = readHeader(certificate, 0);
  const tbs = outer && outer.tag === 0x30 ? readHeader(certificate, outer.contentStart) : undefined;
  const fields = tbs && tbs.tag === 0x30 ? children(certificate, tbs) : undefined;
  if (!fields) return undefined;
  // version [0] is optional; then serial, signature, issuer, validity, subject.
  const subject = fields[(fields[0]?.tag === 0xa0 ? 1 : 0) + 4];
  if (subject?.tag !== 0x30) return undefined;
  return certificate.subarray(subject.contentStart - subject.headerLength, subject.end);
}

/** Encodes one TLV. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of content) length += part.length;
  const lengthBytes: number[] = [];
  if (length < 0x80) {
    lengthBytes.push(length);
  } else {
    for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) lengthBytes.unshift(rest % 256);
    lengthBytes.unshift(0x80 | lengthBytes.length);
  }
  const out = new Uint8Array(1 + lengthBytes.length + length);
  out[0] = tag;
  out.set(lengthBytes, 1);
  let offset = 1 + lengthBytes.length;
  for (const part of content) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** SEQUENCE of already encoded values. */
export const sequence = (...items: Uint8Array[]) => tlv(0x30, ...items);

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, sign byte added if needed). */
export function unsignedInteger(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const bytes = magnitude.subarray(start);
  return (bytes[0] ?? 0) & 0x80 ? tlv(0x02, Uint8Array.of(0), bytes) : tlv(0x02, bytes);
}

/** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5), whole seconds. */
export function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const year = date.getUTCFullYear();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return year >= 1950 && year < 2050
    ? tlv(0x17, Buffer.from(digits.slice(2), "latin1"))
    : tlv(0x18, Buffer.from(digits, "latin1"));
}

/** The OID (content bytes, hex) of a SubjectPublicKeyInfo's algorithm, or undefined. */
export function spkiAlgorithmOid(spki: Uint8Array): string | undefined {
  const outer = readHeader(spki, 0);
  const algorithm = outer && outer.tag === 0x30 ? readHeader(spki, outer.contentStart) : undefined;
  const oid = algorithm && algorithm.tag === 0x30 ? readHeader(spki, algorithm.contentStart) : undefined;
  if (oid?.tag !== 0x06 || oid.end > algorithm!.end) return undefined;
  return Buffer.from(spki.subarray(oid.contentStart, oid.end)).toString("hex");
}

/**
 * The signed bytes and the signature of a SIGNED{} structure (certificate, CSR):
 * SEQUENCE { toBeSigned, AlgorithmIdentifier, BIT STRING }. Undefined if it is not one.
 */
export function signedParts(der: Uint8Array): { toBeSigned: Uint8Array; signature: Uint8Array } | undefined {
  const outer = readHeader(der, 0);
  if (outer?.tag !== 0x30 || outer.end !== der.length) return undefined;
  const [body, algorithm, bits, ...rest] = children(der, outer) ?? [];
  if (!body || algorithm?.tag !== 0x30 || bits?.tag !== 0x03 || bits.length < 1 || rest.length > 0) {
    return undefined;
  }
  return {
    toBeSigned: der.subarray(body.contentStart - body.headerLength, body.end),
    signature: der.subarray(bits.contentStart + 1, bits.end),
  };
}

/** The parts of a PKCS#10 CertificationRequest, located without decoding them. */
export type CsrParts = {
  subjectNameDer: Uint8Array;
  spki: Uint8Array;
  /** True when the `[0]` attributes set holds anything (extension requests, challenge password). */
  hasAttributes: boolean;
  /** The `[0]` attributes (tag 0xa0), when present. */
  attributes?: DerHeader;
  /** OID (content bytes, hex) of the signature algorithm, and whether it has parameters. */
  signatureOid: string;
  signatureHasParameters: boolean;
  /** The whole DER of the signature algorithm's parameters (other than NULL), when present. */
  signatureParameters?: Uint8Array;
};

/**
 * Locates the fields of a CertificationRequest (RFC 2986): SEQUENCE { SEQUENCE { version,
 * subject, subjectPKInfo, [0] attributes }, AlgorithmIdentifier, BIT STRING }.
 * Undefined when the structure does not have that shape.
 */
export function csrParts(der: Uint8Array): CsrParts | undefined {
  const outer = readHeader(der, 0);
  if (outer?.tag !== 0x30 || outer.end !== der.length) return undefined;
  const [info, algorithm, bits, ...rest] = children(der, outer) ?? [];
  if (info?.tag !== 0x30 || algorithm?.tag !== 0x30 || bits?.tag !== 0x03 || rest.length > 0)
    return undefined;
  const [version, subject, spki, attributes, ...more] = children(der, info) ?? [];
  if (version?.tag !== 0x02 || subject?.tag !== 0x30 || spki?.tag !== 0x30 || more.length > 0)
    return undefined;
  if (attributes !== undefined && attributes.tag !== 0xa0) return undefined;
  const [oid, ...parameters] = children(der, algorithm) ?? [];
  if (oid?.tag !== 0x06) return undefined;
  const whole = (h: DerHeader) => der.subarray(h.contentStart - h.headerLength, h.end);
  const signatureParameters = parameters.find((p) => p.tag !== 0x05);
  return {
    subjectNameDer: whole(subject),
    spki: whole(spki),
    hasAttributes: attributes !== undefined && attributes.length > 0,
    ...(attributes ? { attributes } : {}),
    signatureOid: Buffer.from(der.subarray(oid.contentStart, oid.end)).toString("hex"),
    signatureHasParameters: signatureParameters !== undefined,
    ...(signatureParameters ? { signatureParameters: whole(signatureParameters) } : {}),
  };
}

/** The fields of a certificate's TBSCertificate, located without decoding them. */
export type CertificateFields = {
  /** INTEGER content bytes of the serial number. */
  serialNumber: Uint8Array;
  /** Whole DER of the issuer and subject Names. */
  issuerDer: Uint8Array;
  subjectDer: Uint8Array;
  /** notBefore and notAfter: tag (0x17 UTCTime, 0x18 GeneralizedTime) and content. */
  notBefore: { tag: number; content: Uint8Array };
  notAfter: { tag: number; content: Uint8Array };
  /** Whole DER of the SubjectPublicKeyInfo. */
  spki: Uint8Array;
};

/**
 * Locates the fields of a certificate (RFC 5280): SEQUENCE { SEQUENCE { [0] version OPTIONAL,
 * serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }.
 * Undefined when the structure does not have that shape.
 */
export function certificateFields(der: Uint8Array): CertificateFields | undefined {
  const outer = readHeader(der, 0);
  if (outer?.tag !== 0x30 || outer.end !== der.length) return undefined;
  const tbs = readHeader(der, outer.contentStart);
  const fields = tbs?.tag === 0x30 ? children(der, tbs) : undefined;
  if (!fields) return undefined;
  const [serial, algorithm, issuer, validity, subject, spki] = fields.slice(fields[0]?.tag === 0xa0 ? 1 : 0);
  if (
    serial?.tag !== 0x02 ||
    algorithm?.tag !== 0x30 ||
    issuer?.tag !== 0x30 ||
    validity?.tag !== 0x30 ||
    subject?.tag !== 0x30 ||
    spki?.tag !== 0x30
  ) {
    return undefined;
  }
  const [notBefore, notAfter, ...rest] = children(der, validity) ?? [];
  const isTime = (h: DerHeader | undefined): h is DerHeader => h?.tag === 0x17 || h?.tag === 0x18;
  if (!isTime(notBefore) || !isTime(notAfter) || rest.length > 0) return undefined;
  const whole = (h: DerHeader) => der.subarray(h.contentStart - h.headerLength, h.end);
  const content = (h: DerHeader) => der.subarray(h.contentStart, h.end);
  return {
    serialNumber: content(serial),
    issuerDer: whole(issuer),
    subjectDer: whole(subject),
    notBefore: { tag: notBefore.tag, content: content(notBefore) },
    notAfter: { tag: notAfter.tag, content: content(notAfter) },
    spki: whole(spki),
  };
}

/**
 * Reads a UTCTime (tag 0x17, `YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (0x18,
 * `YYYYMMDDHHMMSS[.fff]Z`) as RFC 5280 writes them. Undefined for any other form.
 */
export function readTime(tag: number, content: Uint8Array): Date | undefined {
  const text = Buffer.from(content).toString("latin1");
  const match =
    tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : tag === 0x18
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3})\d*)?Z$/.exec(text)
        : null;
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s, fraction] = match;
  let year = Number(y);
  if (tag === 0x17) year += year < 50 ? 2000 : 1900;
  const ms = Date.UTC(
    year,
    Number(mo) - 1,
    Number(d),
    Number(h),
    Number(mi),
    Number(s),
    Number((fraction ?? "0").padEnd(3, "0")),
  );
  const date = new Date(ms);
  // Date.UTC rolls over (month 13, day 32, minute 63): refuse values that do not round-trip, as
  // OpenSSL does ("Bad time value"; a minute of 63 was read as 17:03, found by der-fuzz.test.ts).
  if (
    date.getUTCMonth() !== Number(mo) - 1 ||
    date.getUTCDate() !== Number(d) ||
    date.getUTCHours() !== Number(h) ||
    date.getUTCMinutes() !== Number(mi) ||
    date.getUTCSeconds() !== Number(s)
  ) {
    return undefined;
  }
  return year < 100 ? undefined : date;
}
