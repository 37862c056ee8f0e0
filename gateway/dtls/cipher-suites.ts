/** The two PSK suites the server speaks, and how each turns a key block into record protection. */
import { cbcSha256Protection } from "./cbc-sha256-protection.ts";
import { ccm8Protection } from "./ccm8-protection.ts";
import type { RecordProtection } from "./record-protection.ts";

export type CipherSuiteName = "TLS_PSK_WITH_AES_128_CCM_8" | "TLS_PSK_WITH_AES_128_CBC_SHA256";

export interface CipherSuite {
  id: number;
  name: CipherSuiteName;
  macKeyLength: number;
  encKeyLength: number;
  fixedIvLength: number;
  protection(encKey: Buffer, macKey: Buffer, fixedIv: Buffer): RecordProtection;
}

export const TLS_PSK_WITH_AES_128_CCM_8: CipherSuite = {
  id: 0xc0a8,
  name: "TLS_PSK_WITH_AES_128_CCM_8",
  macKeyLength: 0,
  encKeyLength: 16,
  fixedIvLength: 4,
  protection: (encKey, _macKey, fixedIv) => ccm8Protection(encKey, fixedIv),
};

export const TLS_PSK_WITH_AES_128_CBC_SHA256: CipherSuite = {
  id: 0x00ae,
  name: "TLS_PSK_WITH_AES_128_CBC_SHA256",
  macKeyLength: 32,
  encKeyLength: 16,
  fixedIvLength: 0,
  protection: (encKey, macKey) => cbcSha256Protection(encKey, macKey),
};

/** Server preference order. */
export const SUPPORTED_SUITES: readonly CipherSuite[] = [
  TLS_PSK_WITH_AES_128_CCM_8,
  TLS_PSK_WITH_AES_128_CBC_SHA256,
];

export interface DirectionalProtection {
  /** What the client sends and the server opens. */
  client: RecordProtection;
  /** What the server sends and the client opens. */
  server: RecordProtection;
}

/** Splits the key block (RFC 5246 §6.3) into the client and server record protections. */
export function protectionsFromKeyBlock(suite: CipherSuite, block: Buffer): DirectionalProtection {
  let at = 0;
  const take = (n: number): Buffer => {
    const part = block.subarray(at, at + n);
    at += n;
    return part;
  };
  const clientMac = take(suite.macKeyLength);
  const serverMac = take(suite.macKeyLength);
  const clientKey = take(suite.encKeyLength);
  const serverKey = take(suite.encKeyLength);
  const clientIv = take(suite.fixedIvLength);
  const serverIv = take(suite.fixedIvLength);
  return {
    client: suite.protection(clientKey, clientMac, clientIv),
    server: suite.protection(serverKey, serverMac, serverIv),
  };
}

export function keyBlockLength(suite: CipherSuite): number {
  return 2 * (suite.macKeyLength + suite.encKeyLength + suite.fixedIvLength);
}
