import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  CertificateIssuer,
  createKeyPair,
  createSelfSignedCa,
  InvalidCertificateError,
  parseCertificate,
  parseCertificateBundle,
  readCertificate,
  splitPemBundle,
  verifySignedBy,
} from "#core/pki/index.ts";
import {
  opensslCa,
  opensslCertificateId,
  opensslCsr,
  opensslSign,
  opensslX509,
  tamperSignature,
} from "./openssl.ts";

/** `openssl x509 -serial` (`serial=09A4...`) in the canonical form: the hex, lowercased. */
function opensslSerial(certPem: string): string {
  return opensslX509(certPem, ["-serial"]).trim().replace("serial=", "").toLowerCase();
}

describe("certificate serial numbers: one canonical form, whatever the value", () => {
  const ca = opensslCa("/CN=Serial CA");
  const { csrPem } = opensslCsr("ec:P-256", "/CN=serials");
  // Each shape that once tripped a reader: a single byte, a first byte below 0x10 (leading 0
  // nibble, the old flake), a high first byte (DER adds a 00 sign byte), a 20-byte maximum, and
  // values whose minimal encoding drops leading zero bytes.
  const cases: [string, string][] = [
    ["0x01", "01"],
    ["0x0a", "0a"],
    ["0x0a1b2c3d", "0a1b2c3d"],
    ["0x09a4b5c6d7e8f90a", "09a4b5c6d7e8f90a"],
    ["0x7f", "7f"],
    ["0x80", "80"],
    ["0x80000001", "80000001"],
    ["0xff00ff00ff00ff00ff00ff00ff00ff00", "ff00ff00ff00ff00ff00ff00ff00ff00"],
    ["0x0000000abc", "0abc"],
    ["0x100", "0100"],
    ["0x7fffffffffffffffffffffffffffffffffffffff", "7fffffffffffffffffffffffffffffffffffffff"],
    ["0x0fffffffffffffffffffffffffffffffffffffff", "0fffffffffffffffffffffffffffffffffffffff"],
  ];
  for (const [set, expected] of cases) {
    it(`reads serial ${set} as ${expected}, as openssl prints it, in both readers`, async () => {
      const pem = opensslSign(csrPem, ca, 30, set);
      assert.equal(opensslSerial(pem), expected, "openssl's own reading");
      assert.equal((await parseCertificate(pem)).serialNumber, expected);
      assert.equal(readCertificate(pem).serialNumber, expected);
    });
  }

  it("reads 40 random openssl serials as openssl prints them (about 1 in 16 has a leading 0 nibble)", async () => {
    const leading = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const pem = opensslSign(csrPem, ca);
      const expected = opensslSerial(pem);
      assert.match(expected, /^([0-9a-f]{2})+$/);
      leading.add(expected[0]!);
      assert.equal((await parseCertificate(pem)).serialNumber, expected);
      assert.equal(readCertificate(pem).serialNumber, expected);
    }
    assert.ok(leading.size > 1);
  });

  it("CertificateIssuer returns the serial it was given in the same canonical form the readers give", async () => {
    const issuer = await CertificateIssuer.create(
      await createSelfSignedCa({ subject: "CN=Issuer", days: 30 }),
    );
    const { publicKeyPem } = await createKeyPair();
    for (const [given, expected] of [
      ["a", "0a"],
      ["0A:1B", "0a1b"],
      ["0000ab", "ab"],
      ["0080", "80"],
      ["80", "80"],
      ["09a4b5", "09a4b5"],
    ] as const) {
      const issued = await issuer.issue({
        subjectPublicKey: publicKeyPem,
        subject: "CN=x",
        serialNumber: given,
      });
      assert.equal(issued.serialNumber, expected, given);
      assert.equal(opensslSerial(issued.certificatePem), expected, given);
      assert.equal(readCertificate(issued.certificatePem).serialNumber, expected, given);
    }
  });

  it("reads a negative serial (RFC 5280 forbids it, openssl accepts it) as -magnitude, as openssl does", async () => {
    const pem = opensslSign(csrPem, ca, 30, "-0x0102");
    assert.equal(opensslSerial(pem), "-0102");
    assert.equal((await parseCertificate(pem)).serialNumber, "-0102");
    assert.equal(readCertificate(pem).serialNumber, "-0102");
  });
});

describe("parseCertificate", () => {
  const ca = opensslCa("/C=US/O=Acme/CN=Acme Device CA");
  const deviceCsr = opensslCsr(
    "ec:P-256",
    "/C=DE/ST=Bayern/O=Acme/OU=Line 2/CN=SN-42/serialNumber=42/dnQualifier=q1",
  );
  const device = opensslSign(deviceCsr.csrPem, ca);

  it("reads an openssl certificate: id, names, serial, validity, key", async () => {
    const certificate = await parseCertificate(device);
    assert.equal(certificate.id, opensslCertificateId(device));
    assert.match(certificate.id, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      { ...certificate.subject, text: undefined },
      {
        country: "DE",
        stateName: "Bayern",
        organization: "Acme",
        organizationalUnit: "Line 2",
        commonName: "SN-42",
        serialNumber: "42",
        distinguishedNameQualifier: "q1",
        text: undefined,
      },
    );
    assert.equal(certificate.issuer.commonName, "Acme Device CA");
    assert.equal(certificate.issuer.organization, "Acme");
    assert.equal(certificate.serialNumber, opensslSerial(device));
    const endDate = opensslX509(device, ["-enddate"]).trim().replace("notAfter=", "");
    assert.equal(certificate.notAfter.getTime(), new Date(endDate).getTime());
    assert.ok(certificate.notBefore < certificate.notAfter);
    assert.deepEqual(certificate.keyAlgorithm, { type: "EC", curve: "P-256" });
    assert.equal(certificate.isSelfSigned, false);
    assert.equal(certificate.isCa, false);
  });

  it("recognizes a self-signed CA", async () => {
    const parsed = await parseCertificate(ca.certPem);
    assert.equal(parsed.isSelfSigned, true);
    assert.equal(parsed.isCa, true);
    assert.equal(parsed.id, opensslCertificateId(ca.certPem));
  });

  it("verifySignedBy tells the issuing CA from another CA with the same name", async () => {
    assert.equal(await verifySignedBy(device, ca.certPem), true);
    const impostor = opensslCa("/C=US/O=Acme/CN=Acme Device CA");
    assert.equal(await verifySignedBy(device, impostor.certPem), false);
    assert.equal(await verifySignedBy(tamperSignature(device), ca.certPem), false);
    assert.equal(await verifySignedBy(ca.certPem, ca.certPem), true);
  });

  it("verifies an RSA chain", async () => {
    const rsaCa = opensslCa("/CN=RSA CA", "rsa:2048");
    const leaf = opensslSign(opensslCsr("rsa:2048", "/CN=rsa-leaf").csrPem, rsaCa);
    assert.equal(await verifySignedBy(leaf, rsaCa.certPem), true);
    assert.equal(await verifySignedBy(leaf, ca.certPem), false);
    assert.deepEqual((await parseCertificate(leaf)).keyAlgorithm, { type: "RSA", modulusBits: 2048 });
  });

  it("splits a bundle into its certificates, skipping other blocks", async () => {
    const bundle = `# chain\n${device}\n${ca.keyPem}${ca.certPem}`;
    const parts = splitPemBundle(bundle);
    assert.equal(parts.length, 2);
    const parsed = await parseCertificateBundle(bundle);
    assert.deepEqual(
      parsed.map((c) => c.subject.commonName),
      ["SN-42", "Acme Device CA"],
    );
    assert.equal((await parseCertificate(parts[0]!)).id, opensslCertificateId(device));
  });

  it("refuses garbage with InvalidCertificateError", async () => {
    for (const input of [
      "",
      "nope",
      deviceCsr.csrPem,
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    ]) {
      await assert.rejects(parseCertificate(input), InvalidCertificateError);
    }
    await assert.rejects(verifySignedBy("junk", ca.certPem), InvalidCertificateError);
  });

  it("only ever rejects with InvalidCertificateError, whatever the string", async () => {
    const framed = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
    const der = Buffer.from(device.split("\n").slice(1, -2).join(""), "base64");
    const derMutated = fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
      const copy = Buffer.from(der);
      const index = at % copy.length;
      copy[index] = (copy[index] ?? 0) ^ xor;
      return framed(copy.toString("base64"));
    });
    const input = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.base64String({ maxLength: 600 }).map(framed),
      derMutated,
    );
    await fc.assert(
      fc.asyncProperty(input, async (text) => {
        try {
          await parseCertificate(text);
        } catch (error) {
          return error instanceof InvalidCertificateError;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });
});
