/** The DTLS record layer framing (RFC 6347 §4.1): header parse and encode, several records per datagram. */
import { ByteReader, DecodeError } from "./byte-reader.ts";
import { ContentType, RECORD_HEADER_LENGTH } from "./constants.ts";

export interface DtlsRecord {
  type: number;
  version: number;
  epoch: number;
  /** 48-bit record sequence number (safe as a JS number). */
  sequence: number;
  fragment: Buffer;
}

const KNOWN_TYPES = new Set<number>(Object.values(ContentType));
/** RFC 6347: a record's length must not exceed 2^14 + 2048. */
export const MAX_RECORD_FRAGMENT = 16384 + 2048;

/**
 * Splits a datagram into records. A malformed record ends parsing: the records before it are
 * returned (RFC 6347 §4.1.2.7: invalid records are silently discarded).
 */
export function parseDatagram(datagram: Buffer): DtlsRecord[] {
  const records: DtlsRecord[] = [];
  const reader = new ByteReader(datagram);
  try {
    while (reader.remaining >= RECORD_HEADER_LENGTH) {
      const type = reader.u8();
      const version = reader.u16();
      const epoch = reader.u16();
      const sequence = reader.u48();
      const length = reader.u16();
      if (length > MAX_RECORD_FRAGMENT) break;
      const fragment = reader.bytes(length);
      // Only DTLS versions {254, x}; unknown content types are dropped.
      if (version >> 8 !== 0xfe || !KNOWN_TYPES.has(type)) continue;
      records.push({ type, version, epoch, sequence, fragment });
    }
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
  }
  return records;
}

export function encodeRecordHeader(
  type: number,
  version: number,
  epoch: number,
  sequence: number,
  length: number,
): Buffer {
  const header = Buffer.alloc(RECORD_HEADER_LENGTH);
  header.writeUInt8(type, 0);
  header.writeUInt16BE(version, 1);
  header.writeUInt16BE(epoch, 3);
  header.writeUIntBE(sequence, 5, 6);
  header.writeUInt16BE(length, 11);
  return header;
}

export function encodeRecord(record: DtlsRecord): Buffer {
  return Buffer.concat([
    encodeRecordHeader(record.type, record.version, record.epoch, record.sequence, record.fragment.length),
    record.fragment,
  ]);
}

/** The 8-byte epoch || sequence used in MACs, AAD and CCM nonces. */
export function epochAndSequence(epoch: number, sequence: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(epoch, 0);
  b.writeUIntBE(sequence, 2, 6);
  return b;
}
