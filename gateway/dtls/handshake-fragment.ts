/** Handshake message framing (RFC 6347 §4.2.2): the 12-byte header, fragmentation into records. */
import { ByteReader, DecodeError, u16, u24 } from "./byte-reader.ts";
import { HANDSHAKE_HEADER_LENGTH } from "./constants.ts";

export interface HandshakeFragment {
  msgType: number;
  /** Length of the whole message body. */
  length: number;
  messageSeq: number;
  fragmentOffset: number;
  body: Buffer;
}

/** All handshake fragments in one record's plaintext; throws DecodeError when malformed. */
export function parseHandshakeFragments(plaintext: Buffer): HandshakeFragment[] {
  const reader = new ByteReader(plaintext);
  const fragments: HandshakeFragment[] = [];
  while (reader.remaining > 0) {
    const msgType = reader.u8();
    const length = reader.u24();
    const messageSeq = reader.u16();
    const fragmentOffset = reader.u24();
    const fragmentLength = reader.u24();
    if (fragmentOffset + fragmentLength > length) throw new DecodeError("fragment beyond message");
    fragments.push({ msgType, length, messageSeq, fragmentOffset, body: reader.bytes(fragmentLength) });
  }
  return fragments;
}

function header(msgType: number, length: number, messageSeq: number, offset: number, fragmentLength: number) {
  return Buffer.concat([Buffer.of(msgType), u24(length), u16(messageSeq), u24(offset), u24(fragmentLength)]);
}

/** The message as one unfragmented fragment: also the form hashed into the Finished transcript. */
export function encodeHandshakeMessage(msgType: number, messageSeq: number, body: Buffer): Buffer {
  return Buffer.concat([header(msgType, body.length, messageSeq, 0, body.length), body]);
}

/** Splits a message into fragments whose encoded size (header included) is at most maxFragment. */
export function fragmentHandshakeMessage(
  msgType: number,
  messageSeq: number,
  body: Buffer,
  maxFragment: number,
): Buffer[] {
  const room = Math.max(1, maxFragment - HANDSHAKE_HEADER_LENGTH);
  if (body.length <= room) return [encodeHandshakeMessage(msgType, messageSeq, body)];
  const out: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += room) {
    const part = body.subarray(offset, offset + room);
    out.push(Buffer.concat([header(msgType, body.length, messageSeq, offset, part.length), part]));
  }
  return out;
}
