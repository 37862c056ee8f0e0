/**
 * AES-128-CBC with HMAC-SHA256, MAC-then-encrypt (RFC 5246 §6.2.3.2, RFC 5487
 * TLS_PSK_WITH_AES_128_CBC_SHA256). A per-record random IV precedes the ciphertext.
 *
 * Opening avoids a padding oracle as far as practical: the padding is checked without an early
 * exit, and the MAC is always computed (over the record as if it had no padding when the padding
 * is bad), so a bad padding and a bad MAC cost about the same and give the same answer.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { epochAndSequence } from "./record.ts";
import { authenticatedHeader, type RecordProtection } from "./record-protection.ts";

const BLOCK = 16;
const MAC = 32;

function mac(macKey: Buffer, header: Buffer, content: Buffer): Buffer {
  return createHmac("sha256", macKey).update(header).update(content).digest();
}

export function cbcSha256Protection(encKey: Buffer, macKey: Buffer): RecordProtection {
  return {
    seal(type, version, epoch, sequence, plaintext) {
      const tag = mac(
        macKey,
        authenticatedHeader(epochAndSequence(epoch, sequence), type, version, plaintext.length),
        plaintext,
      );
      const unpadded = plaintext.length + MAC + 1;
      const padLength = (BLOCK - (unpadded % BLOCK)) % BLOCK;
      const padding = Buffer.alloc(padLength + 1, padLength);
      const iv = randomBytes(BLOCK);
      const cipher = createCipheriv("aes-128-cbc", encKey, iv).setAutoPadding(false);
      const body = Buffer.concat([cipher.update(Buffer.concat([plaintext, tag, padding])), cipher.final()]);
      return Buffer.concat([iv, body]);
    },
    open(type, version, epoch, sequence, fragment) {
      const cipherLength = fragment.length - BLOCK;
      if (cipherLength < MAC + BLOCK || cipherLength % BLOCK !== 0) return undefined;
      const iv = fragment.subarray(0, BLOCK);
      let decrypted: Buffer;
      try {
        const decipher = createDecipheriv("aes-128-cbc", encKey, iv).setAutoPadding(false);
        decrypted = Buffer.concat([decipher.update(fragment.subarray(BLOCK)), decipher.final()]);
      } catch {
        return undefined;
      }
      const padLength = decrypted[decrypted.length - 1] ?? 0;
      // 1 when the claimed padding fits after a MAC, else 0; computed without branching on secrets.
      let good = ((decrypted.length - MAC - 1 - padLength) >>> 31) ^ 1;
      // Check up to 256 trailing bytes, always the same count for a given record length.
      const toCheck = Math.min(256, decrypted.length);
      for (let i = 1; i <= toCheck; i++) {
        const byte = decrypted[decrypted.length - i] ?? 0;
        const inPadding = ((padLength + 1 - i) >>> 31) ^ 1; // i <= padLength + 1
        const differs = (byte ^ padLength) === 0 ? 0 : 1;
        good &= ~(inPadding & differs) & 1;
      }
      const strip = good === 1 ? padLength + 1 : 0;
      const contentLength = decrypted.length - MAC - strip;
      const content = decrypted.subarray(0, contentLength);
      const received = decrypted.subarray(contentLength, contentLength + MAC);
      const expected = mac(
        macKey,
        authenticatedHeader(epochAndSequence(epoch, sequence), type, version, contentLength),
        content,
      );
      const macOk = timingSafeEqual(expected, received);
      return macOk && good === 1 ? content : undefined;
    },
  };
}
