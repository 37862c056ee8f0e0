/** The bodies of the handshake messages a PSK server reads and writes (RFC 5246 §7.4, RFC 6347 §4.2.1, RFC 4279). */
import { ByteReader, DecodeError, u16, vector8, vector16 } from "./byte-reader.ts";
import { DTLS_1_0, DTLS_1_2, ExtensionType } from "./constants.ts";

export interface ClientHello {
  clientVersion: number;
  random: Buffer;
  sessionId: Buffer;
  cookie: Buffer;
  cipherSuites: number[];
  compressionMethods: Buffer;
  extensions: Map<number, Buffer>;
}

export function parseClientHello(body: Buffer): ClientHello {
  const r = new ByteReader(body);
  const clientVersion = r.u16();
  const random = r.bytes(32);
  const sessionId = r.vector8();
  if (sessionId.length > 32) throw new DecodeError("session_id too long");
  const cookie = r.vector8();
  const suitesRaw = r.vector16();
  if (suitesRaw.length < 2 || suitesRaw.length % 2 !== 0) throw new DecodeError("cipher_suites");
  const cipherSuites: number[] = [];
  for (let i = 0; i < suitesRaw.length; i += 2) cipherSuites.push(suitesRaw.readUInt16BE(i));
  const compressionMethods = r.vector8();
  if (compressionMethods.length < 1) throw new DecodeError("compression_methods");
  const extensions = new Map<number, Buffer>();
  if (r.remaining > 0) {
    const ext = new ByteReader(r.vector16());
    while (ext.remaining > 0) {
      const type = ext.u16();
      const data = ext.vector16();
      if (extensions.has(type)) throw new DecodeError("duplicate extension");
      extensions.set(type, data);
    }
  }
  r.expectEnd();
  return { clientVersion, random, sessionId, cookie, cipherSuites, compressionMethods, extensions };
}

/** RFC 6347 §4.2.1: a DTLS 1.2 server SHOULD put DTLS 1.0 in the HelloVerifyRequest. */
export function encodeHelloVerifyRequest(cookie: Buffer): Buffer {
  return Buffer.concat([u16(DTLS_1_0), vector8(cookie)]);
}

export interface ServerHelloParams {
  random: Buffer;
  cipherSuite: number;
  extendedMasterSecret: boolean;
  secureRenegotiation: boolean;
}

export function encodeServerHello(p: ServerHelloParams): Buffer {
  const extensions: Buffer[] = [];
  if (p.secureRenegotiation) {
    // renegotiation_info with an empty renegotiated_connection (RFC 5746 §3.6).
    extensions.push(Buffer.concat([u16(ExtensionType.renegotiationInfo), vector16(Buffer.of(0))]));
  }
  if (p.extendedMasterSecret) {
    extensions.push(Buffer.concat([u16(ExtensionType.extendedMasterSecret), vector16(Buffer.alloc(0))]));
  }
  return Buffer.concat([
    u16(DTLS_1_2),
    p.random,
    vector8(Buffer.alloc(0)), // no session id: no resumption
    u16(p.cipherSuite),
    Buffer.of(0), // null compression
    ...(extensions.length > 0 ? [vector16(Buffer.concat(extensions))] : []),
  ]);
}

/** ClientKeyExchange for PSK: opaque psk_identity<0..2^16-1>. */
export function parsePskClientKeyExchange(body: Buffer): Buffer {
  const r = new ByteReader(body);
  const identity = r.vector16();
  r.expectEnd();
  return identity;
}

export function parseFinished(body: Buffer): Buffer {
  if (body.length !== 12) throw new DecodeError("verify_data length");
  return body;
}
