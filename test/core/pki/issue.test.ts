import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "#core/errors.ts";
import {
  CertificateIssuer,
  createCsr,
  createKeyPair,
  createSelfSignedCa,
  InvalidKeyError,
  issueCertificate,
  parseCertificate,
  parseCsr,
  verifySignedBy,
} from "#core/pki/index.ts";
import { openssl, opensslCertificateId, opensslCsr, opensslVerify, opensslX509 } from "./openssl.ts";

describe("createKeyPair", () => {
  for (const algorithm of ["EC-P256", "EC-P384", "RSA-2048"] as const) {
    it(`makes ${algorithm} keys openssl reads`, async () => {
      const keys = await createKeyPair(algorithm);
      assert.match(keys.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
      const text = openssl(["pkey", "-noout", "-text"], { input: keys.privateKeyPem }).stdout.toString();
      assert.match(
        text,
        algorithm === "RSA-2048"
          ? /2048 bit/
          : algorithm === "EC-P384"
            ? /NIST CURVE: P-384/
            : /NIST CURVE: P-256/,
      );
      const pub = openssl(["pkey", "-pubout"], { input: keys.privateKeyPem }).stdout.toString();
      assert.equal(pub, keys.publicKeyPem);
    });
  }
});

describe("createCsr", () => {
  it("makes a CSR that openssl verifies", async () => {
    const keys = await createKeyPair("EC-P256");
    const pem = await createCsr({
      privateKeyPem: keys.privateKeyPem,
      subject: { commonName: "SN-1", organization: "Acme", country: "US" },
    });
    const out = openssl(["req", "-verify", "-noout", "-subject"], { input: pem });
    assert.match(out.stdout.toString(), /CN ?= ?SN-1/);
  });

  it("signs with an openssl SEC1 or PKCS#8 key", async () => {
    const { keyPem } = opensslCsr("ec:P-384", "/CN=x");
    const pem = await createCsr({ privateKeyPem: keyPem, subject: "CN=from-openssl-key" });
    assert.equal((await parseCsr(pem)).subject.commonName, "from-openssl-key");
    const sec1 = openssl(["ec", "-outform", "PEM"], { input: keyPem }).stdout.toString();
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);
    await createCsr({ privateKeyPem: sec1, subject: "CN=sec1" });
  });

  it("refuses a bad private key with InvalidKeyError", async () => {
    await assert.rejects(createCsr({ privateKeyPem: "nope", subject: "CN=x" }), InvalidKeyError);
  });
});

describe("issueCertificate", () => {
  it("issues device certificates that openssl verifies against the CA", async () => {
    const ca = await createSelfSignedCa({
      subject: { commonName: "Onramp Test CA", organization: "Acme", country: "US" },
    });
    assert.equal(opensslVerify(ca.certPem, ca.certPem), true);
    assert.match(opensslX509(ca.certPem, ["-text"]), /CA:TRUE/);

    for (const key of ["ec:P-256", "ec:P-384", "rsa:2048"] as const) {
      const csr = await parseCsr(opensslCsr(key, `/CN=dev-${key}`).csrPem);
      const issued = await issueCertificate({
        caCertPem: ca.certPem,
        caPrivateKeyPem: ca.privateKeyPem,
        subjectPublicKey: csr.publicKeySpkiDer,
        subject: csr.subject,
        days: 30,
      });
      assert.equal(opensslVerify(ca.certPem, issued.certificatePem), true, key);
      assert.equal(issued.certificateId, opensslCertificateId(issued.certificatePem));
      const parsed = await parseCertificate(issued.certificatePem);
      assert.equal(parsed.id, issued.certificateId);
      assert.equal(parsed.publicKeyFingerprint, csr.publicKeyFingerprint);
      assert.equal(parsed.subject.commonName, `dev-${key}`);
      assert.equal(parsed.issuer.commonName, "Onramp Test CA");
      assert.equal(parsed.serialNumber, issued.serialNumber);
      assert.match(issued.serialNumber, /^[4-7][0-9a-f]{31}$/);
      assert.equal(parsed.notAfter.getTime() - parsed.notBefore.getTime(), 30 * 86_400_000);
      assert.equal(await verifySignedBy(issued.certificatePem, ca.certPem), true);
      const text = opensslX509(issued.certificatePem, ["-text"]);
      assert.match(text, /CA:FALSE/);
      assert.match(text, /TLS Web Client Authentication/);
      assert.match(text, /X509v3 Authority Key Identifier/);
    }
  });

  it("issues server certificates with DNS names and an intermediate CA from an RSA root", async () => {
    const root = await createSelfSignedCa({ subject: "CN=RSA Root", keyAlgorithm: "RSA-2048", days: 30 });
    const intermediateKeys = await createKeyPair("EC-P384");
    const intermediate = await issueCertificate({
      caCertPem: root.certPem,
      caPrivateKeyPem: root.privateKeyPem,
      subjectPublicKey: intermediateKeys.publicKeyPem,
      subject: { commonName: "Intermediate" },
      isCa: true,
      pathLength: 0,
    });
    assert.equal(opensslVerify(root.certPem, intermediate.certificatePem), true);
    const issuer = await CertificateIssuer.create({
      certPem: intermediate.certificatePem,
      privateKeyPem: intermediateKeys.privateKeyPem,
    });
    const serverKeys = await createKeyPair("EC-P256");
    const server = await issuer.issue({
      subjectPublicKey: serverKeys.publicKeyPem,
      subject: { commonName: "localhost" },
      extensions: {
        extendedKeyUsage: ["serverAuth"],
        dnsNames: ["localhost", "mqtt.local"],
        ipAddresses: ["127.0.0.1"],
      },
      serialNumber: "0102",
    });
    const chain = root.certPem + intermediate.certificatePem;
    assert.equal(opensslVerify(chain, server.certificatePem), true);
    const text = opensslX509(server.certificatePem, ["-text"]);
    assert.match(text, /DNS:localhost, DNS:mqtt.local, IP Address:127.0.0.1/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, /ecdsa-with-SHA384/);
    assert.equal(server.serialNumber, "0102");
  });

  it("encodes notAfter from 2050 on as GeneralizedTime, as AWS IoT's 2049-12-31 limit shows", async () => {
    const ca = await createSelfSignedCa({ subject: "CN=Long CA", days: 30 });
    const keys = await createKeyPair();
    for (const notAfter of [new Date("2049-12-31T23:59:59Z"), new Date("2060-01-01T00:00:00Z")]) {
      const issued = await issueCertificate({
        caCertPem: ca.certPem,
        caPrivateKeyPem: ca.privateKeyPem,
        subjectPublicKey: keys.publicKeyPem,
        subject: "CN=long",
        notAfter,
      });
      assert.equal((await parseCertificate(issued.certificatePem)).notAfter.getTime(), notAfter.getTime());
      assert.equal(opensslVerify(ca.certPem, issued.certificatePem), true);
    }
  });

  it("refuses a CA key that does not match, bad keys and bad requests", async () => {
    const ca = await createSelfSignedCa({ subject: "CN=CA" });
    const other = await createKeyPair();
    await assert.rejects(
      CertificateIssuer.create({ certPem: ca.certPem, privateKeyPem: other.privateKeyPem }),
      (error: unknown) => error instanceof InvalidKeyError && error.reason === "KEY_MISMATCH",
    );
    const issuer = await CertificateIssuer.create(ca);
    await assert.rejects(issuer.issue({ subjectPublicKey: "nope", subject: "CN=x" }), InvalidKeyError);
    await assert.rejects(
      issuer.issue({ subjectPublicKey: new Uint8Array([0x30, 0]), subject: "CN=x" }),
      InvalidKeyError,
    );
    await assert.rejects(
      issuer.issue({ subjectPublicKey: other.publicKeyPem, subject: {} }),
      ValidationError,
    );
    await assert.rejects(
      issuer.issue({ subjectPublicKey: other.publicKeyPem, subject: "CN=x", days: -1 }),
      ValidationError,
    );
    await assert.rejects(
      issuer.issue({ subjectPublicKey: other.publicKeyPem, subject: "CN=x", serialNumber: "00" }),
      ValidationError,
    );
    await assert.rejects(
      issuer.issue({ subjectPublicKey: other.publicKeyPem, subject: { country: "Germany" } }),
      ValidationError,
    );
  });

  it("issues many certificates concurrently with unique serials and ids", async () => {
    const ca = await createSelfSignedCa({ subject: "CN=Bulk CA" });
    const issuer = await CertificateIssuer.create(ca);
    const csr = await parseCsr(opensslCsr("ec:P-256", "/CN=bulk").csrPem);
    const started = performance.now();
    const issued = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        issuer.issue({ subjectPublicKey: csr.publicKeySpkiDer, subject: { commonName: `bulk-${i}` } }),
      ),
    );
    const perSecond = (issued.length / (performance.now() - started)) * 1000;
    assert.equal(new Set(issued.map((c) => c.serialNumber)).size, issued.length);
    assert.equal(new Set(issued.map((c) => c.certificateId)).size, issued.length);
    assert.equal(opensslVerify(ca.certPem, issued[299]!.certificatePem), true);
    // A regression guard far below the measured rate (thousands per second), not a benchmark.
    assert.ok(perSecond > 100, `issued only ${perSecond.toFixed(0)} certificates/s`);
  });
});
