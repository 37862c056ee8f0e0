import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ValidationError } from "#core/errors.ts";
import { AWS_IOT_KEY_POLICY, createCsr, createKeyPair, InvalidCsrError, parseCsr } from "#core/pki/index.ts";
import { opensslCa, opensslCsr, opensslCsrKeyFingerprint, tamperSignature } from "./openssl.ts";

const SUBJECT = "/C=DE/ST=Bayern/O=Acme GmbH/OU=Sensors/CN=SN-0001/serialNumber=0001/dnQualifier=batch7";

async function rejection(promise: Promise<unknown>): Promise<InvalidCsrError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof InvalidCsrError, `expected InvalidCsrError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected the CSR to be refused");
}

describe("parseCsr", () => {
  for (const key of ["ec:P-256", "ec:P-384", "rsa:2048"] as const) {
    it(`accepts an openssl ${key} CSR and reads its subject and key`, async () => {
      const { csrPem } = opensslCsr(key, SUBJECT);
      const csr = await parseCsr(csrPem);
      assert.deepEqual(
        { ...csr.subject, text: undefined },
        {
          country: "DE",
          stateName: "Bayern",
          organization: "Acme GmbH",
          organizationalUnit: "Sensors",
          commonName: "SN-0001",
          serialNumber: "0001",
          distinguishedNameQualifier: "batch7",
          text: undefined,
        },
      );
      assert.deepEqual(
        csr.keyAlgorithm,
        key === "rsa:2048" ? { type: "RSA", modulusBits: 2048 } : { type: "EC", curve: key.slice(3) },
      );
      assert.equal(csr.publicKeyFingerprint, opensslCsrKeyFingerprint(csrPem));
      assert.match(csr.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
    });
  }

  it("refuses RSA-1024 as WEAK_KEY", async () => {
    const error = await rejection(parseCsr(opensslCsr("rsa:1024", "/CN=weak").csrPem));
    assert.equal(error.reason, "WEAK_KEY");
    assert.ok(error instanceof ValidationError);
    assert.equal(error.kind, "invalid");
  });

  it("refuses P-521 by default and accepts it with the AWS IoT policy", async () => {
    const { csrPem } = opensslCsr("ec:P-521", "/CN=p521");
    assert.equal((await rejection(parseCsr(csrPem))).reason, "UNSUPPORTED_KEY");
    const csr = await parseCsr(csrPem, { keyPolicy: AWS_IOT_KEY_POLICY });
    assert.deepEqual(csr.keyAlgorithm, { type: "EC", curve: "P-521" });
  });

  it("refuses an Ed25519 CSR as UNSUPPORTED_KEY", async () => {
    const error = await rejection(
      parseCsr(opensslCsr("ed25519", "/CN=ed").csrPem, { keyPolicy: AWS_IOT_KEY_POLICY }),
    );
    assert.equal(error.reason, "UNSUPPORTED_KEY");
  });

  for (const key of ["ec:P-256", "rsa:2048"] as const) {
    it(`refuses a ${key} CSR whose signature was tampered with as BAD_SIGNATURE`, async () => {
      const { csrPem } = opensslCsr(key, "/CN=tampered");
      assert.equal((await rejection(parseCsr(tamperSignature(csrPem)))).reason, "BAD_SIGNATURE");
    });
  }

  it("refuses garbage, empty input, a certificate and two CSRs as MALFORMED", async () => {
    const { csrPem } = opensslCsr("ec:P-256", "/CN=one");
    const base64Body = csrPem.split("\n").slice(1, -2).join("\n");
    const inputs = [
      "",
      "hello",
      "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
      "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
      `-----BEGIN CERTIFICATE REQUEST-----\n${base64Body}\n`,
      opensslCa("/CN=not a csr").certPem,
      csrPem + csrPem,
      `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.concat([Buffer.from(base64Body, "base64"), Buffer.from([0])]).toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`,
      "x".repeat(20_000),
    ];
    for (const input of inputs) {
      assert.equal(
        (await rejection(parseCsr(input))).reason,
        "MALFORMED",
        JSON.stringify(input.slice(0, 80)),
      );
    }
  });

  it("reads a CSR made by createCsr, with its DNS names", async () => {
    const keys = await createKeyPair("EC-P384");
    const pem = await createCsr({
      privateKeyPem: keys.privateKeyPem,
      subject: { commonName: "gw-1" },
      dnsNames: ["gw-1.local"],
    });
    const csr = await parseCsr(pem);
    assert.equal(csr.subject.commonName, "gw-1");
    assert.deepEqual(csr.dnsNames, ["gw-1.local"]);
    assert.deepEqual(csr.keyAlgorithm, { type: "EC", curve: "P-384" });
  });

  it("only ever rejects with InvalidCsrError, whatever the string", async () => {
    const { csrPem } = opensslCsr("ec:P-256", "/CN=fuzz");
    const framed = (body: string) =>
      `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n`;
    const mutated = fc
      .tuple(fc.nat({ max: csrPem.length - 1 }), fc.string({ minLength: 1, maxLength: 3 }))
      .map(([at, text]) => csrPem.slice(0, at) + text + csrPem.slice(at + 1));
    const derMutated = fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
      const der = Buffer.from(csrPem.split("\n").slice(1, -2).join(""), "base64");
      const index = at % der.length;
      der[index] = (der[index] ?? 0) ^ xor;
      return framed(der.toString("base64"));
    });
    const input = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.base64String({ maxLength: 600 }).map(framed),
      fc
        .uint8Array({ maxLength: 400 })
        .map((bytes) => framed(Buffer.concat([Buffer.from([0x30, 0x82]), bytes]).toString("base64"))),
      mutated,
      derMutated,
    );
    await fc.assert(
      fc.asyncProperty(input, async (text) => {
        try {
          await parseCsr(text);
        } catch (error) {
          return error instanceof InvalidCsrError;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });
});
