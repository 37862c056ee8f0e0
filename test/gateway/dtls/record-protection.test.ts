import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { cbcSha256Protection } from "#gateway/dtls/cbc-sha256-protection.ts";
import { ccm8Protection } from "#gateway/dtls/ccm8-protection.ts";
import { DTLS_1_2 } from "#gateway/dtls/constants.ts";
import type { RecordProtection } from "#gateway/dtls/record-protection.ts";

const suites: [string, () => RecordProtection][] = [
  ["CCM_8", () => ccm8Protection(randomBytes(16), randomBytes(4))],
  ["CBC-SHA256", () => cbcSha256Protection(randomBytes(16), randomBytes(32))],
];

for (const [name, make] of suites) {
  test(`${name}: round trip for payloads of 1..300 bytes`, () => {
    const p = make();
    for (let n = 1; n <= 300; n += 7) {
      const plain = randomBytes(n);
      const sealed = p.seal(23, DTLS_1_2, 1, n, plain);
      assert.deepEqual(p.open(23, DTLS_1_2, 1, n, sealed), plain);
    }
  });

  test(`${name}: any flipped bit, other header fields or truncation fail to open`, () => {
    const p = make();
    const plain = Buffer.from("hello, device");
    const sealed = p.seal(23, DTLS_1_2, 1, 5, plain);
    for (let i = 0; i < sealed.length; i++) {
      const bad = Buffer.from(sealed);
      bad[i] = (bad[i] ?? 0) ^ 0x01;
      assert.equal(p.open(23, DTLS_1_2, 1, 5, bad), undefined, `byte ${i}`);
    }
    assert.equal(p.open(23, DTLS_1_2, 1, 6, sealed), undefined, "other sequence number");
    assert.equal(p.open(23, DTLS_1_2, 2, 5, sealed), undefined, "other epoch");
    assert.equal(p.open(22, DTLS_1_2, 1, 5, sealed), undefined, "other content type");
    for (const len of [0, 1, 8, 16, sealed.length - 1]) {
      assert.equal(p.open(23, DTLS_1_2, 1, 5, sealed.subarray(0, len)), undefined, `truncated to ${len}`);
    }
  });

  test(`${name}: keys of one direction do not open the other`, () => {
    const a = make();
    const b = make();
    assert.equal(b.open(23, DTLS_1_2, 1, 0, a.seal(23, DTLS_1_2, 1, 0, Buffer.from("x"))), undefined);
  });
}

test("CCM_8 record layout: explicit nonce = epoch || sequence, then ciphertext and an 8-byte tag", () => {
  const p = ccm8Protection(randomBytes(16), randomBytes(4));
  const sealed = p.seal(23, DTLS_1_2, 1, 0x010203, Buffer.from("abc"));
  assert.equal(sealed.length, 8 + 3 + 8);
  assert.equal(sealed.subarray(0, 8).toString("hex"), "0001000000010203");
});

test("CBC-SHA256 record layout: IV, then whole blocks holding data, MAC and padding", () => {
  const p = cbcSha256Protection(randomBytes(16), randomBytes(32));
  for (const n of [0, 1, 15, 16, 31]) {
    const sealed = p.seal(23, DTLS_1_2, 1, 0, randomBytes(n));
    assert.equal((sealed.length - 16) % 16, 0);
    assert.equal(sealed.length - 16, Math.ceil((n + 32 + 1) / 16) * 16);
  }
});
