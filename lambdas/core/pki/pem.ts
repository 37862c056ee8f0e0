/** PEM framing (RFC 7468): strict base64 bodies, no encapsulated headers. */

/** One decoded PEM block. */
export type PemBlock = { label: string; der: Uint8Array };

const BEGIN = "-----BEGIN";
const END = "-----END";
/** A BEGIN or END line's label and closing dashes, read at one position (sticky: no scanning). */
const BEGIN_LINE = /-----BEGIN ([A-Z0-9 ]{1,64})-----/y;
const END_LINE = /-----END ([A-Z0-9 ]{1,64})-----/y;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes every PEM block in `text` (text around the blocks is ignored, as openssl does).
 * Returns undefined when a block is malformed: mismatched labels, bad base64, empty body or a
 * BEGIN line without its END line.
 *
 * One pass with indexOf, linear in the length of `text`: a regex over the whole text
 * (`BEGIN ... [\s\S]*? ... END`) rescans to the end from every BEGIN line that has no END line,
 * which took 4 s on a 256 KB text of BEGIN lines (found by test/core/pki/der-fuzz.test.ts).
 */
export function readPemBlocks(text: string): PemBlock[] | undefined {
  const blocks: PemBlock[] = [];
  for (let position = text.indexOf(BEGIN); position !== -1; position = text.indexOf(BEGIN, position)) {
    BEGIN_LINE.lastIndex = position;
    const begin = BEGIN_LINE.exec(text);
    if (!begin) return undefined;
    const bodyStart = BEGIN_LINE.lastIndex;
    // The first END line closes the block (a second BEGIN inside the body fails the base64 check).
    const endAt = text.indexOf(END, bodyStart);
    if (endAt === -1) return undefined;
    END_LINE.lastIndex = endAt;
    const end = END_LINE.exec(text);
    if (!end || end[1] !== begin[1]) return undefined;
    position = END_LINE.lastIndex;
    const base64 = text.slice(bodyStart, endAt).replace(/\s+/g, "");
    if (base64.length === 0 || !BASE64.test(base64)) return undefined;
    blocks.push({ label: begin[1]!, der: new Uint8Array(Buffer.from(base64, "base64")) });
  }
  return blocks;
}

/** Encodes DER bytes as a PEM block with 64-character lines and a trailing newline. */
export function toPem(der: Uint8Array | ArrayBuffer, label: string): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Copies a view into a fresh ArrayBuffer (WebCrypto and asn1 parsers want whole buffers). */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}
