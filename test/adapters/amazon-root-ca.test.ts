import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { it } from "node:test";
import { AMAZON_ROOT_CA_1 } from "#adapters/amazon-root-ca.ts";

it("embeds Amazon Root CA 1 with its published SHA-256 fingerprint", () => {
  const out = execFileSync("openssl", ["x509", "-noout", "-fingerprint", "-sha256", "-subject"], {
    input: AMAZON_ROOT_CA_1,
  }).toString();
  assert.match(
    out,
    /8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E/,
  );
  assert.match(out, /CN ?= ?Amazon Root CA 1/);
});
