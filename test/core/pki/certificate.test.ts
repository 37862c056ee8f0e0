import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  InvalidCertificateError,
  parseCertificate,
  parseCertificateBundle,
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
    const serial = opensslX509(device, ["-serial"]).trim().replace("serial=", "").toLowerCase();
    assert.equal(certificate.serialNumber, serial.replace(/^0+/, ""));
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
