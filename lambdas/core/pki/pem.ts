/** PEM framing (RFC 7468): strict base64 bodies, no encapsulated headers. */

/** One decoded PEM block. */
export type PemBlock = { label: string; der: Uint8Array };

const BLOCK = /-----BEGIN ([A-Z0-9 ]{1,64})-----([\s\S]*?)-----END ([A-Z0-9 ]{1,64})-----/g;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes every PEM block in `text` (text around the blocks is ignored, as openssl does).
 * Returns undefined when a block is malformed: mismatched labels, bad base64, empty body or a
 * BEGIN line without its END line.
 */
export function readPemBlocks(text: string): PemBlock[] | undefined {
  const blocks: PemBlock[] = [];
  let consumed = 0;
  for (const match of text.matchAll(BLOCK)) {
    const [whole, label, body, endLabel] = match;
    if (label !== endLabel || body === undefined || label === undefined) return undefined;
    if (text.slice(consumed, match.index).includes("-----BEGIN")) return undefined;
    consumed = match.index + whole.length;
    const base64 = body.replace(/\s+/g, "");
    if (base64.length === 0 || !BASE64.test(base64)) return undefined;
    blocks.push({ label, der: new Uint8Array(Buffer.from(base64, "base64")) });
  }
  if (text.slice(consumed).includes("-----BEGIN")) return undefined;
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
