/** TLS 1.2 PRF with SHA-256 (RFC 5246 §5), the PSK premaster secret (RFC 4279 §2) and key derivation. */
import { createHash, createHmac } from "node:crypto";

function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/** P_SHA256(secret, label || seed) truncated to length bytes. */
export function prfSha256(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  const labelSeed = Buffer.concat([Buffer.from(label, "ascii"), seed]);
  const out: Buffer[] = [];
  let produced = 0;
  let a: Buffer = labelSeed;
  while (produced < length) {
    a = hmac(secret, a);
    const block = hmac(secret, Buffer.concat([a, labelSeed]));
    out.push(block);
    produced += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** premaster = uint16(N) || N zero bytes || uint16(N) || psk, N = psk length. */
export function pskPremasterSecret(psk: Buffer): Buffer {
  const n = Buffer.alloc(2);
  n.writeUInt16BE(psk.length);
  return Buffer.concat([n, Buffer.alloc(psk.length), n, psk]);
}

export function masterSecret(premaster: Buffer, clientRandom: Buffer, serverRandom: Buffer): Buffer {
  return prfSha256(premaster, "master secret", Buffer.concat([clientRandom, serverRandom]), 48);
}

/** RFC 7627: the master secret bound to the hash of the handshake up to ClientKeyExchange. */
export function extendedMasterSecret(premaster: Buffer, sessionHash: Buffer): Buffer {
  return prfSha256(premaster, "extended master secret", sessionHash, 48);
}

export function keyBlock(master: Buffer, clientRandom: Buffer, serverRandom: Buffer, length: number): Buffer {
  return prfSha256(master, "key expansion", Buffer.concat([serverRandom, clientRandom]), length);
}

export function finishedVerifyData(master: Buffer, sender: "client" | "server", transcript: Buffer): Buffer {
  const hash = createHash("sha256").update(transcript).digest();
  return prfSha256(master, `${sender} finished`, hash, 12);
}
