import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidKeyError } from "#core/pki/errors.ts";
import { toPkcs12 } from "#core/pki/pkcs12.ts";
import { openssl, opensslCa, opensslCsr, opensslSign } from "./openssl.ts";

describe("toPkcs12 (node-forge)", () => {
  it("writes what openssl pkcs12 reads: the certificate, and the key with the password", () => {
    const { certPem, keyPem } = opensslCa("/CN=p12-device", "rsa:2048");
    const p12 = toPkcs12({
      privateKeyPem: keyPem,
      certificatePem: certPem,
      password: "x",
      friendlyName: "thing-1",
    });
    const files = { "d.p12": Buffer.from(p12) as unknown as string };
    const info = openssl(["pkcs12", "-info", "-nokeys", "-in", "d.p12", "-passin", "pass:x"], {
      files,
    }).stdout;
    assert.match(info.toString(), /friendlyName: thing-1/);
    assert.match(info.toString(), /subject=CN = p12-device/);
  });

  it("keeps the certificate's DER byte for byte when an EC CA signed it (forge re-encoding adds a NULL)", () => {
    const ca = opensslCa("/CN=ec-ca", "ec:P-256");
    const { csrPem, keyPem } = opensslCsr("rsa:2048", "/CN=rsa-device");
    const certPem = opensslSign(csrPem, ca);
    const p12 = toPkcs12({ privateKeyPem: keyPem, certificatePem: certPem, password: "x" });
    const files = { "d.p12": Buffer.from(p12) as unknown as string };
    const out = openssl(["pkcs12", "-in", "d.p12", "-nokeys", "-passin", "pass:x"], {
      files,
    }).stdout.toString();
    const inP12 = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
    assert.equal(inP12?.replace(/\s/g, ""), certPem.trim().replace(/\s/g, ""));
  });

  it("refuses an EC key (node-forge has none), a key that is not the certificate's, and garbage", () => {
    const ec = opensslCa("/CN=ec", "ec:P-256");
    const rsa = opensslCa("/CN=rsa", "rsa:2048");
    const other = opensslCa("/CN=other", "rsa:2048");
    const reason = (input: { privateKeyPem: string; certificatePem: string }) => {
      try {
        toPkcs12({ ...input, password: "" });
      } catch (error) {
        assert.ok(error instanceof InvalidKeyError, String(error));
        return error.reason;
      }
      assert.fail("expected a refusal");
    };
    assert.equal(reason({ privateKeyPem: ec.keyPem, certificatePem: ec.certPem }), "UNSUPPORTED_KEY");
    assert.equal(reason({ privateKeyPem: rsa.keyPem, certificatePem: other.certPem }), "KEY_MISMATCH");
    assert.equal(reason({ privateKeyPem: "nope", certificatePem: rsa.certPem }), "MALFORMED");
  });
});
