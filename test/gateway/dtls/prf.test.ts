import assert from "node:assert/strict";
import { test } from "node:test";
import { finishedVerifyData, prfSha256, pskPremasterSecret } from "#gateway/dtls/prf.ts";

test("TLS 1.2 PRF (P_SHA256) matches the published test vector", () => {
  // The TLS 1.2 PRF vector posted to the IETF TLS list and used by many stacks' test suites.
  const secret = Buffer.from("9bbe436ba940f017b17652849a71db35", "hex");
  const seed = Buffer.from("a0ba9f936cda311827a6f796ffd5198c", "hex");
  const expected = Buffer.from(
    "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af" +
      "0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66",
    "hex",
  );
  assert.deepEqual(prfSha256(secret, "test label", seed, 100), expected);
});

test("PRF output is a prefix-stable stream", () => {
  const secret = Buffer.from("secret");
  const long = prfSha256(secret, "l", Buffer.from("s"), 80);
  assert.deepEqual(prfSha256(secret, "l", Buffer.from("s"), 13), long.subarray(0, 13));
});

test("PSK premaster secret is len || zeros || len || psk (RFC 4279 §2)", () => {
  const psk = Buffer.from("00112233445566778899aabbccddeeff", "hex");
  assert.equal(pskPremasterSecret(psk).toString("hex"), `0010${"00".repeat(16)}0010${psk.toString("hex")}`);
});

test("Finished verify_data is 12 bytes and depends on the sender label", () => {
  const master = Buffer.alloc(48, 7);
  const client = finishedVerifyData(master, "client", Buffer.from("transcript"));
  const server = finishedVerifyData(master, "server", Buffer.from("transcript"));
  assert.equal(client.length, 12);
  assert.notDeepEqual(client, server);
});
