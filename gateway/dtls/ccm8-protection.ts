/**
 * AES-128-CCM with an 8-byte tag (RFC 6655, TLS_PSK_WITH_AES_128_CCM_8): the nonce is the 4-byte
 * implicit IV from the key block and the 8-byte explicit epoch || sequence sent before the ciphertext.
 * OpenSSL's CCM cannot process an empty plaintext through node:crypto, so empty records are not
 * sent (DtlsSession.send refuses them) and an empty one received does not open (it is dropped).
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { epochAndSequence } from "./record.ts";
import { authenticatedHeader, type RecordProtection } from "./record-protection.ts";

const TAG = 8;
const EXPLICIT_NONCE = 8;

export function ccm8Protection(key: Buffer, implicitIv: Buffer): RecordProtection {
  return {
    seal(type, version, epoch, sequence, plaintext) {
      const explicit = epochAndSequence(epoch, sequence);
      const nonce = Buffer.concat([implicitIv, explicit]);
      const cipher = createCipheriv("aes-128-ccm", key, nonce, { authTagLength: TAG });
      cipher.setAAD(authenticatedHeader(explicit, type, version, plaintext.length), {
        plaintextLength: plaintext.length,
      });
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([explicit, body, cipher.getAuthTag()]);
    },
    open(type, version, epoch, sequence, fragment) {
      if (fragment.length < EXPLICIT_NONCE + TAG) return undefined;
      const explicit = fragment.subarray(0, EXPLICIT_NONCE);
      const body = fragment.subarray(EXPLICIT_NONCE, fragment.length - TAG);
      const tag = fragment.subarray(fragment.length - TAG);
      const nonce = Buffer.concat([implicitIv, explicit]);
      try {
        const decipher = createDecipheriv("aes-128-ccm", key, nonce, { authTagLength: TAG });
        decipher.setAuthTag(tag);
        decipher.setAAD(authenticatedHeader(epochAndSequence(epoch, sequence), type, version, body.length), {
          plaintextLength: body.length,
        });
        const plaintext = decipher.update(body);
        decipher.final();
        return plaintext;
      } catch {
        return undefined;
      }
    },
  };
}
