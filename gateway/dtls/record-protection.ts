/** The per-direction record protection of an epoch: seal a plaintext into a record fragment, open it back. */
export interface RecordProtection {
  /** Returns the protected fragment for a record with this header. */
  seal(type: number, version: number, epoch: number, sequence: number, plaintext: Buffer): Buffer;
  /** Returns the plaintext, or undefined when the record does not authenticate (drop it silently). */
  open(type: number, version: number, epoch: number, sequence: number, fragment: Buffer): Buffer | undefined;
}

/** Epoch 0: no protection. */
export const nullProtection: RecordProtection = {
  seal: (_type, _version, _epoch, _sequence, plaintext) => plaintext,
  open: (_type, _version, _epoch, _sequence, fragment) => fragment,
};

/** seq_num(8) || type(1) || version(2) || length(2): the header both suites authenticate. */
export function authenticatedHeader(
  epochSequence: Buffer,
  type: number,
  version: number,
  length: number,
): Buffer {
  const b = Buffer.alloc(13);
  epochSequence.copy(b, 0);
  b.writeUInt8(type, 8);
  b.writeUInt16BE(version, 9);
  b.writeUInt16BE(length, 11);
  return b;
}
