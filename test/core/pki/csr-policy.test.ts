import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidCsrError, parseCsr } from "#core/pki/index.ts";
import { type OpensslKey, openssl, opensslCsr } from "./openssl.ts";

async function refusal(csrPem: string): Promise<InvalidCsrError> {
  try {
    await parseCsr(csrPem);
  } catch (error) {
    assert.ok(error instanceof InvalidCsrError, `expected InvalidCsrError, got ${String(error)}`);
    assert.equal(error.kind, "invalid");
    return error;
  }
  assert.fail("expected the CSR to be refused");
}

/** The signature algorithm openssl reports for a CSR, so each case checks what it claims to. */
function signatureAlgorithm(csrPem: string): string {
  const text = openssl(["req", "-noout", "-text"], { input: csrPem }).stdout.toString();
  return /Signature Algorithm: (\S+)/.exec(text)?.[1] ?? "?";
}

describe("parseCsr: one CN only", () => {
  it("refuses two CN components, even when the first is the one a caller checks", async () => {
    const { csrPem } = opensslCsr("ec:P-256", "/CN=SN-0001/CN=someone-else");
    const subject = openssl(["req", "-noout", "-subject"], { input: csrPem }).stdout.toString();
    assert.match(subject, /CN = SN-0001, CN = someone-else/);
    const error = await refusal(csrPem);
    assert.equal(error.reason, "AMBIGUOUS_SUBJECT");
    assert.match(error.message, /more than one CN/);
  });

  it("refuses two CNs in one multi-valued RDN (-multivalue-rdn CN=a+CN=b)", async () => {
    const { csrPem } = opensslCsr("ec:P-256", "/CN=SN-0001+CN=other", ["-multivalue-rdn"]);
    assert.equal((await refusal(csrPem)).reason, "AMBIGUOUS_SUBJECT");
  });

  it("refuses a CN repeated in an RDN away from the first (O between them)", async () => {
    const { csrPem } = opensslCsr("rsa:2048", "/CN=SN-0001/O=Acme/CN=SN-0001");
    assert.equal((await refusal(csrPem)).reason, "AMBIGUOUS_SUBJECT");
  });

  it("accepts one CN beside repeated other fields and multi-valued RDNs", async () => {
    const { csrPem } = opensslCsr("ec:P-256", "/OU=a/OU=b/CN=SN-0001+serialNumber=1", ["-multivalue-rdn"]);
    const csr = await parseCsr(csrPem);
    assert.equal(csr.subject.commonName, "SN-0001");
    assert.equal(csr.subject.organizationalUnit, "a");
  });
});

describe("parseCsr: SHA-256 or stronger signatures only", () => {
  const weak: [string, OpensslKey, string[], RegExp][] = [
    ["ECDSA with SHA-1", "ec:P-256", ["-sha1"], /ecdsa-with-SHA1/],
    ["RSA with SHA-1", "rsa:2048", ["-sha1"], /sha1WithRSAEncryption/],
    ["RSA with MD5", "rsa:2048", ["-md5"], /md5WithRSAEncryption/],
    ["RSA with SHA-224", "rsa:2048", ["-sha224"], /sha224WithRSAEncryption/],
    ["ECDSA with SHA-224", "ec:P-256", ["-sha224"], /ecdsa-with-SHA224/],
    ["RSA-PSS with SHA-1", "rsa:2048", ["-sha1", "-sigopt", "rsa_padding_mode:pss"], /rsassaPss/],
  ];
  for (const [name, key, args, reported] of weak) {
    it(`refuses a CSR signed with ${name} as WEAK_SIGNATURE, with a message naming the fix`, async () => {
      const { csrPem } = opensslCsr(key, "/CN=SN-0001", args);
      assert.match(signatureAlgorithm(csrPem), reported);
      const error = await refusal(csrPem);
      assert.equal(error.reason, "WEAK_SIGNATURE");
      assert.match(error.message, /SHA-256 or stronger/);
    });
  }

  const strong: [string, OpensslKey, string[]][] = [
    ["ECDSA with SHA-256", "ec:P-256", ["-sha256"]],
    ["ECDSA with SHA-384", "ec:P-384", ["-sha384"]],
    ["ECDSA with SHA-512", "ec:P-256", ["-sha512"]],
    ["RSA with SHA-256", "rsa:2048", ["-sha256"]],
    ["RSA with SHA-512", "rsa:2048", ["-sha512"]],
    ["RSA-PSS with SHA-256", "rsa:2048", ["-sha256", "-sigopt", "rsa_padding_mode:pss"]],
  ];
  for (const [name, key, args] of strong) {
    it(`accepts a CSR signed with ${name}`, async () => {
      const csr = await parseCsr(opensslCsr(key, "/CN=SN-0001", args).csrPem);
      assert.equal(csr.subject.commonName, "SN-0001");
    });
  }
});
