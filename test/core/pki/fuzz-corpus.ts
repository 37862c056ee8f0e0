/**
 * The fuzz corpus of the DER readers: openssl-made CSRs and certificates (the seeds) and the
 * mutations applied to them (bit flips, truncations, corrupted length fields, swapped tags,
 * spliced and random bytes, deep nesting), as fast-check arbitraries. Shared by
 * der-fuzz.test.ts and bench/pki-readers.ts (the node-forge comparison), so both see the same
 * inputs for the same fast-check seed.
 */
import { readFileSync, writeFileSync } from "node:fs";
import fc from "fast-check";
import { opensslCa, opensslCsr, opensslSign } from "./openssl.ts";

/** The committed seeds (fuzz-seeds.json), so a fast-check seed names the same cases on every run. */
const SEEDS_FILE = new URL("./fuzz-seeds.json", import.meta.url);

/** One openssl-made input: its PEM label and DER. */
export type Seed = { name: string; label: "CERTIFICATE REQUEST" | "CERTIFICATE"; der: Uint8Array };

/** One fuzz case: the PEM text given to the reader and how it was made. */
export type FuzzCase = { label: Seed["label"]; pem: string; how: string };

function derOf(pem: string): Uint8Array {
  return new Uint8Array(Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64"));
}

/**
 * The seeds: CSRs with P-256 (most devices), P-384, RSA 2048, RSA-PSS, Ed25519 keys, a SAN
 * extension request and a multi-valued RDN; a CA and two device certificates it signed.
 * Takes ~1 s (openssl key generation).
 */
export function opensslSeeds(): Seed[] {
  const subject = "/C=DE/O=Acme GmbH/OU=Sensors/CN=SN-0001/serialNumber=0001";
  const csr = (name: string, pem: string): Seed => ({ name, label: "CERTIFICATE REQUEST", der: derOf(pem) });
  const cert = (name: string, pem: string): Seed => ({ name, label: "CERTIFICATE", der: derOf(pem) });
  const p256 = opensslCsr("ec:P-256", subject, ["-addext", "subjectAltName=DNS:dev-1.example,DNS:dev-1"]);
  const rsa = opensslCsr("rsa:2048", subject);
  const ca = opensslCa("/O=Acme/CN=Fuzz CA");
  const rsaCa = opensslCa("/O=Acme/CN=Fuzz RSA CA", "rsa:2048");
  return [
    csr("csr-p256-san", p256.csrPem),
    csr("csr-p384", opensslCsr("ec:P-384", subject).csrPem),
    csr("csr-rsa2048", rsa.csrPem),
    csr(
      "csr-rsa-pss",
      opensslCsr("rsa:2048", "/CN=pss", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"])
        .csrPem,
    ),
    csr("csr-ed25519", opensslCsr("ed25519", "/CN=ed").csrPem),
    csr(
      "csr-multivalue-rdn",
      opensslCsr("ec:P-256", "/O=Acme/CN=a+serialNumber=1", ["-multivalue-rdn"]).csrPem,
    ),
    cert("ca-p256", ca.certPem),
    cert("device-p256", opensslSign(p256.csrPem, ca)),
    cert("device-rsa", opensslSign(rsa.csrPem, rsaCa)),
  ];
}

/** The committed openssl-made seeds. */
export function fuzzSeeds(): Seed[] {
  const stored = JSON.parse(readFileSync(SEEDS_FILE, "utf8")) as {
    name: string;
    label: Seed["label"];
    pem: string;
  }[];
  return stored.map(({ name, label, pem }) => ({ name, label, der: derOf(pem) }));
}

/**
 * Makes new seeds with openssl and writes them to fuzz-seeds.json:
 * `node --import tsx -e 'import("#test/core/pki/fuzz-corpus.ts").then((m) => m.writeFuzzSeeds())'`.
 */
export function writeFuzzSeeds(): void {
  const seeds = opensslSeeds().map(({ name, label, der }) => ({ name, label, pem: pemOf(der, label) }));
  writeFileSync(SEEDS_FILE, `${JSON.stringify(seeds, null, 2)}\n`);
}

/** Offsets of every TLV header in `der`, descending into constructed values (tag bit 0x20). */
export function headerOffsets(der: Uint8Array): number[] {
  const offsets: number[] = [];
  const walk = (start: number, end: number, depth: number) => {
    for (let offset = start; offset < end && depth < 64; ) {
      const tag = der[offset];
      const first = der[offset + 1];
      if (tag === undefined || first === undefined) return;
      let length = first;
      let header = 2;
      if (first & 0x80) {
        const n = first & 0x7f;
        if (n === 0 || n > 4) return;
        length = 0;
        for (let i = 0; i < n; i++) length = length * 256 + (der[offset + 2 + i] ?? 0);
        header += n;
      }
      if (offset + header + length > end) return;
      offsets.push(offset);
      if (tag & 0x20) walk(offset + header, offset + header + length, depth + 1);
      offset += header + length;
    }
  };
  walk(0, der.length, 0);
  return offsets;
}

/** The length-field replacements tried on a header: long forms, indefinite, oversize, zero. */
const LENGTH_FIELDS: number[][] = [
  [0x00],
  [0x7f],
  [0x80],
  [0x81, 0x00],
  [0x81, 0xff],
  [0x82, 0xff, 0xff],
  [0x83, 0x01, 0x00, 0x00],
  [0x84, 0xff, 0xff, 0xff, 0xff],
  [0x84, 0x7f, 0xff, 0xff, 0xff],
  [0x85, 0x01, 0x00, 0x00, 0x00, 0x00],
  [0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xff],
];

/** Replaces the length field of the TLV at `offset` with `field`. */
function replaceLength(der: Uint8Array, offset: number, field: number[]): Uint8Array {
  const first = der[offset + 1] ?? 0;
  const oldLength = first & 0x80 ? 1 + (first & 0x7f) : 1;
  return Buffer.concat([
    der.subarray(0, offset + 1),
    Uint8Array.from(field),
    der.subarray(offset + 1 + oldLength),
  ]);
}

/** `depth` SEQUENCEs (or `tag`s) nested in each other with correct definite lengths, around `core`. */
export function nested(depth: number, core: Uint8Array = new Uint8Array(0), tag = 0x30): Uint8Array {
  // Built from the inside out into one buffer: each level adds a 5-byte header (0x84 + 4 bytes).
  const out = new Uint8Array(depth * 6 + core.length);
  let start = out.length - core.length;
  out.set(core, start);
  for (let i = 0; i < depth; i++) {
    const length = out.length - start;
    start -= 6;
    out.set([tag, 0x84, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff], start);
  }
  return out;
}

/** A PEM block with 64-character lines. */
export function pemOf(der: Uint8Array, label: string): string {
  const lines =
    Buffer.from(der)
      .toString("base64")
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Mutants of one seed, and random inputs that owe nothing to it. */
export function fuzzCase(seeds: Seed[]): fc.Arbitrary<FuzzCase> {
  const seed = fc.constantFrom(...seeds);
  const at = (der: Uint8Array) => fc.nat({ max: der.length - 1 });
  const mutant = seed.chain((s) => {
    const der = s.der;
    const offsets = headerOffsets(der);
    const make = (bytes: Uint8Array, how: string): FuzzCase => ({
      label: s.label,
      pem: pemOf(bytes, s.label),
      how: `${s.name}: ${how}`,
    });
    return fc.oneof(
      fc.array(fc.tuple(at(der), fc.nat({ max: 7 })), { minLength: 1, maxLength: 8 }).map((flips) => {
        const bytes = Uint8Array.from(der);
        for (const [i, bit] of flips) bytes[i]! ^= 1 << bit;
        return make(bytes, `bit flips ${flips.map(([i, b]) => `${i}.${b}`).join(",")}`);
      }),
      at(der).map((n) => make(der.subarray(0, n), `truncated to ${n}`)),
      fc
        .tuple(fc.constantFrom(...offsets), fc.constantFrom(...LENGTH_FIELDS))
        .map(([o, field]) =>
          make(replaceLength(der, o, field), `length at ${o} -> ${Buffer.from(field).toString("hex")}`),
        ),
      fc
        .tuple(
          fc.constantFrom(...offsets),
          fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0),
        )
        .map(([o, delta]) => {
          const bytes = Uint8Array.from(der);
          const first = bytes[o + 1]!;
          const index = first & 0x80 ? o + 1 + (first & 0x7f) : o + 1;
          bytes[index] = (bytes[index]! + delta) & 0xff;
          return make(bytes, `length at ${o} ${delta > 0 ? "+" : ""}${delta}`);
        }),
      fc.tuple(fc.constantFrom(...offsets), fc.nat({ max: 255 })).map(([o, tag]) => {
        const bytes = Uint8Array.from(der);
        bytes[o] = tag;
        return make(bytes, `tag at ${o} -> ${tag.toString(16)}`);
      }),
      fc
        .tuple(at(der), fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.nat({ max: 32 }))
        .map(([i, insert, cut]) =>
          make(
            Buffer.concat([der.subarray(0, i), insert, der.subarray(Math.min(der.length, i + cut))]),
            `splice at ${i}: -${cut} +${insert.length}`,
          ),
        ),
      fc
        .tuple(fc.constantFrom(...offsets), fc.integer({ min: 1, max: 4000 }))
        .map(([o, depth]) =>
          make(Buffer.concat([der.subarray(0, o), nested(depth)]), `${depth} nested SEQUENCEs from ${o} on`),
        ),
    );
  });
  const random = fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 2048 }).map((bytes) => ({ bytes, how: "random bytes" })),
    fc.uint8Array({ minLength: 0, maxLength: 2048 }).map((bytes) => ({
      bytes: Buffer.concat([Uint8Array.of(0x30, 0x82, bytes.length >> 8, bytes.length & 0xff), bytes]),
      how: "random bytes in a SEQUENCE",
    })),
    fc
      .integer({ min: 1, max: 30_000 })
      .map((depth) => ({ bytes: nested(depth), how: `${depth} nested SEQUENCEs` })),
  );
  return fc.oneof(
    { weight: 6, arbitrary: mutant },
    {
      weight: 1,
      arbitrary: fc
        .tuple(random, fc.constantFrom<Seed["label"]>("CERTIFICATE REQUEST", "CERTIFICATE"))
        .map(([{ bytes, how }, label]) => ({ label, pem: pemOf(bytes, label), how })),
    },
  );
}

/**
 * `runs` cases for fast-check seed `seed`, generated 250 at a time (some cases are 200 KB of PEM:
 * generating 40,000 up front held gigabytes). The same arguments give the same cases.
 */
export function* fuzzCases(seeds: Seed[], runs: number, seed: number): Generator<FuzzCase> {
  const arbitrary = fuzzCase(seeds);
  for (let batch = 0; batch * 250 < runs; batch++) {
    const numRuns = Math.min(250, runs - batch * 250);
    yield* fc.sample(arbitrary, { numRuns, seed: seed * 100_003 + batch });
  }
}
