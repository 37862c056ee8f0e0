/** Bounds-checked reading of DTLS wire structures. Every read past the end throws DecodeError. */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
}

export class ByteReader {
  private offset = 0;

  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private take(n: number): number {
    if (n < 0 || this.offset + n > this.buf.length) throw new DecodeError("truncated");
    const at = this.offset;
    this.offset += n;
    return at;
  }

  u8(): number {
    return this.buf.readUInt8(this.take(1));
  }

  u16(): number {
    return this.buf.readUInt16BE(this.take(2));
  }

  u24(): number {
    return this.buf.readUIntBE(this.take(3), 3);
  }

  u48(): number {
    return this.buf.readUIntBE(this.take(6), 6);
  }

  bytes(n: number): Buffer {
    const at = this.take(n);
    return this.buf.subarray(at, at + n);
  }

  /** A vector with a 1-byte length prefix. */
  vector8(): Buffer {
    return this.bytes(this.u8());
  }

  vector16(): Buffer {
    return this.bytes(this.u16());
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  expectEnd(): void {
    if (this.remaining !== 0) throw new DecodeError("trailing bytes");
  }
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function u24(n: number): Buffer {
  const b = Buffer.alloc(3);
  b.writeUIntBE(n, 0, 3);
  return b;
}

export function vector8(data: Buffer): Buffer {
  return Buffer.concat([Buffer.of(data.length), data]);
}

export function vector16(data: Buffer): Buffer {
  return Buffer.concat([u16(data.length), data]);
}
