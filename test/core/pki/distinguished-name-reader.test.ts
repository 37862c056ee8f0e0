/**
 * The DER readers of the Lambda path (names, CSR subjectAltName, RSA-PSS, light certificate
 * reader) against openssl-made inputs and against the @peculiar/x509-based readers they replace.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { certificateFields, csrParts, sequence, tlv } from "#core/pki/der.ts";
import { readName } from "#core/pki/distinguished-name.ts";
import { readDistinguishedName, readOid } from "#core/pki/distinguished-name-reader.ts";
import { InvalidCertificateError } from "#core/pki/errors.ts";
import { parseCertificate, parseCsr, readCertificate } from "#core/pki/index.ts";
import { readPemBlocks } from "#core/pki/pem.ts";
import { x509 } from "#core/pki/x509.ts";
import { openssl, opensslCa, opensslCsr, opensslSign, tamperSignature } from "./openssl.ts";

function derOf(pem: string): Uint8Array {
  const der = readPemBlocks(pem)?.[0]?.der;
  assert.ok(der, "PEM expected");
  return der;
}

/** The subject Name DER of a CSR or certificate PEM. */
function subjectDerOf(pem: string): Uint8Array {
  const der = derOf(pem);
  const name = pem.includes("CERTIFICATE REQUEST")
    ? csrParts(der)?.subjectNameDer
    : certificateFields(der)?.subjectDer;
  assert.ok(name, "a subject Name expected");
  return name;
}

/** The old, x509-based reading of the same DER: the oracle. */
const oldReading = (der: Uint8Array) => readName(new x509.Name(der));

/** A CSR made by `openssl req` with extra options (-utf8, -multivalue-rdn, -addext, -sigopt...). */
function csrWith(
  subject: string,
  extra: string[],
  key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
) {
  const { outputs } = openssl(
    ["req", "-new", ...key, "-nodes", "-keyout", "key.pem", "-subj", subject, ...extra, "-out", "csr.pem"],
    { outputs: ["csr.pem", "key.pem"] },
  );
  return { csrPem: outputs["csr.pem"]!, keyPem: outputs["key.pem"]! };
}

/** Subjects openssl writes, with what the reader must find in them (text checked against x509). */
const SUBJECTS: Array<{ subject: string; extra: string[]; expect: Record<string, string> }> = [
  {
    subject:
      "/C=DE/ST=Bayern/L=München/O=Acme GmbH/OU=Sensors/CN=SN-0001/serialNumber=0001/dnQualifier=batch7",
    extra: ["-utf8"],
    expect: {
      country: "DE",
      stateName: "Bayern",
      locality: "München",
      organization: "Acme GmbH",
      organizationalUnit: "Sensors",
      commonName: "SN-0001",
      serialNumber: "0001",
      distinguishedNameQualifier: "batch7",
    },
  },
  {
    subject: "/O=Acme/OU=Line 1+OU=Line 2/CN=dev-7+serialNumber=7",
    extra: ["-multivalue-rdn"],
    expect: { organization: "Acme", organizationalUnit: "Line 1", commonName: "dev-7", serialNumber: "7" },
  },
  {
    subject: '/CN=Gerät 東京 ✓/emailAddress=ops@example.com/O=Quote \\, Comma\\+Plus; "q" <a>',
    extra: ["-utf8"],
    expect: {
      commonName: "Gerät 東京 ✓",
      emailAddress: "ops@example.com",
      organization: 'Quote , Comma+Plus; "q" <a>',
    },
  },
  {
    subject: "/CN= leading and trailing /OU=#hash/DC=example/DC=com/title=Boss/GN=Ada/SN=Lovelace",
    extra: ["-utf8"],
    expect: { commonName: " leading and trailing ", organizationalUnit: "#hash" },
  },
  {
    subject: "/CN=latin1-é",
    extra: [], // without -utf8, openssl takes the bytes as Latin-1 characters
    expect: {},
  },
];

describe("readDistinguishedName", () => {
  for (const { subject, extra, expect } of SUBJECTS) {
    it(`agrees with the x509-based readName on openssl's ${subject}`, () => {
      const { csrPem, keyPem } = csrWith(subject, extra);
      const selfSigned = openssl(
        ["x509", "-req", "-in", "csr.pem", "-signkey", "key.pem", "-days", "1", "-out", "cert.pem"],
        { files: { "csr.pem": csrPem, "key.pem": keyPem }, outputs: ["cert.pem"] },
      ).outputs["cert.pem"]!;
      for (const pem of [csrPem, selfSigned]) {
        const der = subjectDerOf(pem);
        const name = readDistinguishedName(der);
        assert.deepEqual(name, oldReading(der));
        for (const [field, value] of Object.entries(expect)) {
          assert.equal(name?.[field as keyof typeof name], value, field);
        }
      }
    });
  }

  it("writes text as x509 does: RDN order, + for multi-valued RDNs, short names, escapes", () => {
    const { csrPem } = csrWith("/C=US/O=A\\,B/CN=x+serialNumber=1/dnQualifier=q", ["-multivalue-rdn"]);
    assert.equal(
      readDistinguishedName(subjectDerOf(csrPem))?.text,
      "C=US, O=A\\,B, CN=x+2.5.4.5=1, 2.5.4.46=q",
    );
  });

  it("keeps a value that is not a string as hex, as x509 does", () => {
    const cn = tlv(0x06, Uint8Array.of(0x55, 4, 3));
    const der = sequence(tlv(0x31, sequence(cn, tlv(0x02, Uint8Array.of(5)))));
    assert.deepEqual(readDistinguishedName(der), { commonName: "020105", text: "CN=#020105" });
    assert.deepEqual(readDistinguishedName(der), oldReading(der));
  });

  it("refuses what is not one Name", () => {
    const cn = tlv(0x06, Uint8Array.of(0x55, 4, 3));
    const atv = sequence(cn, tlv(0x0c, Buffer.from("x")));
    for (const der of [
      new Uint8Array(0),
      Uint8Array.of(0x30, 0x05),
      tlv(0x31, tlv(0x31, atv)),
      sequence(sequence(atv)), // RDN must be a SET
      Uint8Array.of(...sequence(tlv(0x31, atv)), 0), // trailing byte
      sequence(tlv(0x31, sequence(cn))), // no value
      sequence(tlv(0x31, sequence(cn, tlv(0x1e, Uint8Array.of(0, 0x41, 0))))), // odd BMPString
      sequence(tlv(0x31, sequence(tlv(0x06, Uint8Array.of(0x85)), tlv(0x0c, Uint8Array.of(0x41))))), // cut OID
    ]) {
      assert.equal(readDistinguishedName(der), undefined, Buffer.from(der).toString("hex"));
    }
  });

  it("agrees with the x509-based readName on any name (property)", () => {
    const oid = fc.oneof(
      fc.constantFrom(
        "2.5.4.3",
        "2.5.4.6",
        "2.5.4.7",
        "2.5.4.8",
        "2.5.4.10",
        "2.5.4.11",
        "2.5.4.5",
        "2.5.4.46",
        "1.2.840.113549.1.9.1",
        "0.9.2342.19200300.100.1.25",
        "2.5.4.4",
        "2.5.4.42",
        "2.5.4.12",
      ),
      fc
        .tuple(
          fc.integer({ min: 0, max: 2 }),
          fc.integer({ min: 0, max: 39 }),
          fc.array(fc.nat(), { maxLength: 4 }),
        )
        .map(([a, b, rest]) => [a, b, ...rest].join(".")),
    );
    const printable = fc.string({ unit: fc.constantFrom(..."Az09 '()+,-./:=?") });
    const latin1 = fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)) });
    const bmp = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) });
    const value = fc.oneof(
      fc.string({ unit: "grapheme" }).map((s) => tlv(0x0c, Buffer.from(s, "utf8"))),
      fc.uint8Array({ maxLength: 12 }).map((bytes) => tlv(0x0c, bytes)), // often not UTF-8
      printable.map((s) => tlv(0x13, Buffer.from(s, "latin1"))),
      latin1.map((s) => tlv(0x14, Buffer.from(s, "latin1"))),
      latin1.map((s) => tlv(0x16, Buffer.from(s, "latin1"))),
      bmp.map((s) => tlv(0x1e, Buffer.from(s, "utf16le").swap16())),
      // UniversalString within the BMP (asn1js truncates code points above U+FFFF)
      bmp.map((s) =>
        tlv(
          0x1c,
          Buffer.concat([...s].map((c) => Buffer.from([0, 0, c.charCodeAt(0) >> 8, c.charCodeAt(0) & 0xff]))),
        ),
      ),
      fc.uint8Array({ maxLength: 6 }).map((bytes) => tlv(0x02, bytes.length ? bytes : Uint8Array.of(0))),
      fc.uint8Array({ maxLength: 6 }).map((bytes) => tlv(0x12, bytes)),
    );
    const attribute = fc.tuple(oid, value).map(([type, v]) => sequence(tlv(0x06, oidContent(type)), v));
    const name = fc
      .array(fc.array(attribute, { minLength: 1, maxLength: 3 }), { maxLength: 5 })
      .map((rdns) => sequence(...rdns.map((atvs) => tlv(0x31, ...atvs))));
    fc.assert(
      fc.property(name, (der) => {
        assert.deepEqual(readDistinguishedName(der), oldReading(der));
      }),
      { numRuns: 500 },
    );
  });

  it("reads OIDs as dotted strings", () => {
    for (const dotted of [
      "2.5.4.3",
      "1.2.840.113549.1.9.1",
      "0.9.2342.19200300.100.1.25",
      "2.999.18446744073709551616",
    ]) {
      assert.equal(readOid(oidContent(dotted)), dotted);
    }
  });
});

describe("parseCsr subjectAltName and signatures without @peculiar/x509", () => {
  it("reads the dNSNames of openssl's -addext subjectAltName, in order, as x509 does", async () => {
    const { csrPem } = csrWith("/CN=gw-1", [
      "-addext",
      "subjectAltName=DNS:a.example,IP:10.0.0.1,DNS:b.example,email:ops@example.com",
      "-addext",
      "keyUsage=digitalSignature",
    ]);
    const csr = await parseCsr(csrPem);
    assert.deepEqual(csr.dnsNames, ["a.example", "b.example"]);
    const san = new x509.Pkcs10CertificateRequest(csrPem).getExtension("2.5.29.17");
    assert.ok(san instanceof x509.SubjectAlternativeNameExtension);
    assert.deepEqual(
      san.names.items.filter((n) => n.type === "dns").map((n) => n.value),
      csr.dnsNames,
    );
  });

  it("gives no DNS names for attributes without a subjectAltName (challengePassword, other extensions)", async () => {
    const { csrPem } = csrWith("/CN=pw", ["-addext", "basicConstraints=CA:FALSE"]);
    assert.deepEqual((await parseCsr(csrPem)).dnsNames, []);
    const config =
      "[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nCN=pw\n[attrs]\nchallengePassword=secret123\n";
    const withPassword = openssl(
      [
        ...["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
        ...["-keyout", "key.pem", "-config", "req.cnf", "-out", "csr.pem"],
      ],
      { files: { "req.cnf": config }, outputs: ["csr.pem"] },
    ).outputs["csr.pem"]!;
    const csr = await parseCsr(withPassword);
    assert.equal(csr.subject.commonName, "pw");
    assert.deepEqual(csr.dnsNames, []);
  });

  it("verifies RSA-PSS CSRs (hash and salt length from the parameters) and refuses tampered ones", async () => {
    const rsa = ["-newkey", "rsa:2048"];
    for (const [hash, salt] of [
      ["-sha256", "32"],
      ["-sha384", "20"],
    ] as const) {
      const { csrPem } = csrWith(
        "/CN=pss",
        [hash, "-sigopt", "rsa_padding_mode:pss", "-sigopt", `rsa_pss_saltlen:${salt}`],
        rsa,
      );
      const csr = await parseCsr(csrPem);
      assert.equal(csr.subject.commonName, "pss");
      await assert.rejects(parseCsr(tamperSignature(csrPem)), { reason: "BAD_SIGNATURE" });
    }
  });
});

describe("readCertificate", () => {
  const ca = opensslCa("/C=US/O=Acme/CN=Acme Device CA");

  it("gives the values parseCertificate gives, for EC and RSA certificates", async () => {
    for (const key of ["ec:P-256", "ec:P-384", "rsa:2048"] as const) {
      const device = opensslSign(
        opensslCsr(key, "/C=DE/O=Acme/OU=Line 2/CN=SN-42/serialNumber=42").csrPem,
        ca,
      );
      for (const pem of [device, ca.certPem]) {
        const full = await parseCertificate(pem);
        const light = readCertificate(pem);
        assert.deepEqual(light, {
          id: full.id,
          pem: full.pem,
          der: full.der,
          subject: full.subject,
          issuer: full.issuer,
          serialNumber: full.serialNumber,
          notBefore: full.notBefore,
          notAfter: full.notAfter,
          keyAlgorithm: full.keyAlgorithm,
          publicKeySpkiDer: full.publicKeySpkiDer,
          publicKeyFingerprint: full.publicKeyFingerprint,
        });
      }
    }
  });

  it("reads GeneralizedTime validity (after 2049) like parseCertificate", async () => {
    const device = opensslSign(opensslCsr("ec:P-256", "/CN=long").csrPem, ca, 365 * 40);
    const light = readCertificate(device);
    assert.ok(light.notAfter.getUTCFullYear() >= 2050);
    assert.deepEqual(light.notAfter, (await parseCertificate(device)).notAfter);
  });

  it("only ever throws InvalidCertificateError, whatever the string", () => {
    const base = ca.certPem;
    const body = base.split("\n").slice(1, -2).join("");
    const framed = (b64: string) => `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
    const derMutated = fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
      const der = Buffer.from(body, "base64");
      const index = at % der.length;
      der[index] = (der[index] ?? 0) ^ xor;
      return framed(der.toString("base64"));
    });
    const input = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.base64String({ maxLength: 400 }).map(framed),
      derMutated,
    );
    fc.assert(
      fc.property(input, (text) => {
        try {
          readCertificate(text);
        } catch (error) {
          return error instanceof InvalidCertificateError;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });
});

/** OBJECT IDENTIFIER content bytes of a dotted OID. */
function oidContent(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(BigInt);
  const values = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  const bytes: number[] = [];
  for (const value of values) {
    const groups: number[] = [];
    let rest = value;
    do {
      groups.unshift(Number(rest & 0x7fn));
      rest >>= 7n;
    } while (rest > 0n);
    bytes.push(...groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g)));
  }
  return Uint8Array.from(bytes);
}
