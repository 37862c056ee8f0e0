/**
 * Our DER readers (lambdas/core/pki) against node-forge (`npm run bench:pki`), for the decision
 * recorded in ARCHITECTURE.md ("X.509 readers: ours or node-forge"):
 *
 * - bundle: esbuild (minified ESM, node20, as lib/bundling.ts) of a tiny entry that reads a CSR
 *   one way: ours (parseCsr: parse, subject, SAN, key policy, signature), forge's ASN.1 module
 *   alone (asn1.fromDer + pem.decode: a tree, no CSR semantics) and forge's pki
 *   (certificationRequestFromPem + verify);
 * - cold load: a fresh node imports each bundle (median of 7), beside a trivial reference bundle;
 * - the fuzz corpus of test/core/pki/der-fuzz.test.ts (same cases for the same seed): what each
 *   reader accepts, how it refuses (typed errors, plain Errors, crashes), and how long it takes;
 * - speed: parses/s of openssl-made CSRs and certificates.
 *
 * `--runs N` sets the number of fuzz cases (default 5000), `--seed S` the fast-check seed.
 */
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import forge from "node-forge";
import { ValidationError } from "#core/errors.ts";
import { parseCsr, readCertificate } from "#core/pki/index.ts";
import { PROJECT_ROOT } from "#lib/bundling.ts";
import { fuzzCases, fuzzSeeds, pemOf } from "#test/core/pki/fuzz-corpus.ts";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const RUNS = arg("runs", 5000);
const SEED = arg("seed", 20_261_122);
const OUT = join(PROJECT_ROOT, ".tmp", "bench-pki-readers");

const ENTRIES: Record<string, string> = {
  reference: `export const handler = async () => "ok";`,
  ours: `import { parseCsr } from "#core/pki/csr.ts";
export const handler = async (pem) => (await parseCsr(pem)).subject.commonName;`,
  "forge asn1": `import asn1 from "node-forge/lib/asn1.js"; import pem from "node-forge/lib/pem.js";
export const handler = async (text) => asn1.fromDer(pem.decode(text)[0].body).value.length;`,
  "forge pki": `import forge from "node-forge";
export const handler = async (text) => { const csr = forge.pki.certificationRequestFromPem(text);
  if (!csr.verify()) throw new Error("bad signature"); return csr.subject.getField("CN")?.value; };`,
};

async function bundles(): Promise<void> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const rows: string[][] = [];
  let referenceMs = 0;
  for (const [name, code] of Object.entries(ENTRIES)) {
    const slug = name.replace(/ /g, "-");
    const entry = join(OUT, `${slug}.mjs`);
    writeFileSync(entry, code);
    const outfile = join(OUT, `${slug}.bundle.mjs`);
    await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      minify: true,
      platform: "node",
      format: "esm",
      target: "node20",
      absWorkingDir: PROJECT_ROOT,
      banner: {
        js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
      logLevel: "error",
    });
    const bytes = statSync(outfile).size;
    const gzip = gzipSync(readFileSync(outfile)).length;
    const runs = Array.from({ length: 8 }, () => loadMs(outfile)).slice(1);
    const ms = median(runs);
    if (name === "reference") referenceMs = ms;
    rows.push([
      name,
      `${(bytes / 1024).toFixed(1)} KB`,
      `${(gzip / 1024).toFixed(1)} KB`,
      `${ms.toFixed(1)} ms`,
      `${(ms / referenceMs).toFixed(2)}`,
    ]);
  }
  table(["entry", "minified", "gzip", "cold load (median of 7)", "× reference"], rows);
}

function loadMs(bundle: string): number {
  const child = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      "const t0 = performance.now(); await import(process.argv[1]); process.stdout.write(String(performance.now() - t0));",
      pathToFileURL(bundle).href,
    ],
    { encoding: "utf8" },
  );
  if (child.status !== 0) throw new Error(child.stderr);
  return Number(child.stdout);
}

type Verdict = "accepted" | "typed error" | "plain Error" | "other exception" | "stack overflow";

function classify(run: () => unknown, typed: (e: unknown) => boolean): { verdict: Verdict; ms: number } {
  const t0 = performance.now();
  let verdict: Verdict;
  try {
    run();
    verdict = "accepted";
  } catch (error) {
    if (typed(error)) verdict = "typed error";
    else if (error instanceof RangeError && /call stack/.test(error.message)) verdict = "stack overflow";
    else if (error?.constructor === Error) verdict = "plain Error";
    else verdict = "other exception";
  }
  return { verdict, ms: performance.now() - t0 };
}

async function fuzz(): Promise<void> {
  const seeds = fuzzSeeds();
  const cases = [...fuzzCases(seeds, RUNS, SEED)];
  const tallies = new Map<string, Map<string, number>>();
  const tally = (reader: string, key: string) => {
    const t = tallies.get(reader) ?? new Map<string, number>();
    t.set(key, (t.get(key) ?? 0) + 1);
    tallies.set(reader, t);
  };
  const slowest = new Map<string, { ms: number; how: string }>();
  const examples = new Map<string, string>();
  // "typed error": ValidationError (ours); for forge's CSR path, verify() returning false (our wrapper
  // throws a ValidationError then), the only refusal forge signals other than a plain Error.
  const note = (reader: string, r: { verdict: Verdict; ms: number }, how: string, detail = "") => {
    tally(reader, r.verdict);
    if (r.ms > (slowest.get(reader)?.ms ?? -1)) slowest.set(reader, { ms: r.ms, how });
    const key = `${reader} ${r.verdict}`;
    if (!examples.has(key) && r.verdict !== "typed error") examples.set(key, `${how}${detail}`);
  };
  const isValidation = (e: unknown) => e instanceof ValidationError;
  for (const c of cases) {
    const der = Buffer.from(c.pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64").toString(
      "binary",
    );
    if (c.label === "CERTIFICATE REQUEST") {
      // Ours is async (signature through node:crypto is sync, the API is a promise): time it the same way.
      const t0 = performance.now();
      let verdict: Verdict = "accepted";
      await parseCsr(c.pem).catch((e) => {
        verdict = isValidation(e) ? "typed error" : "other exception";
      });
      note("ours: parseCsr", { verdict, ms: performance.now() - t0 }, c.how);
      let detail = "";
      note(
        "forge: certificationRequestFromPem + verify",
        classify(
          () => {
            const csr = forge.pki.certificationRequestFromPem(c.pem);
            if (!csr.verify()) throw new ValidationError("bad signature");
          },
          (e) => {
            detail = ` (${String((e as Error)?.message).slice(0, 60)})`;
            return isValidation(e);
          },
        ),
        c.how,
        detail,
      );
    } else {
      let openssl = true;
      try {
        new X509Certificate(Buffer.from(der, "binary"));
      } catch {
        openssl = false;
      }
      note(
        "ours: readCertificate",
        classify(() => readCertificate(c.pem), isValidation),
        c.how,
      );
      const r = classify(() => forge.pki.certificateFromPem(c.pem), isValidation);
      note("forge: certificateFromPem", r, c.how);
      if (r.verdict === "accepted" && !openssl)
        tally("forge: certificateFromPem", "accepted, OpenSSL refuses");
    }
    note(
      "forge: asn1.fromDer (strict)",
      classify(() => forge.asn1.fromDer(der), isValidation),
      c.how,
    );
  }
  console.log(`\nFuzz corpus: ${cases.length} cases (seed ${SEED}), each read by its own kind of reader\n`);
  const verdicts = [
    "accepted",
    "typed error",
    "plain Error",
    "other exception",
    "stack overflow",
    "accepted, OpenSSL refuses",
  ];
  table(
    ["reader", ...verdicts, "slowest"],
    [...tallies].map(([reader, t]) => [
      reader,
      ...verdicts.map((v) => String(t.get(v) ?? 0)),
      `${slowest.get(reader)?.ms.toFixed(1)} ms`,
    ]),
  );
  console.log("\nExamples:");
  for (const [key, how] of examples) console.log(`  ${key}: ${how}`);
  for (const [reader, s] of slowest) console.log(`  slowest ${reader}: ${s.how}`);
}

async function speed(): Promise<void> {
  const seeds = fuzzSeeds();
  const pem = (name: string) => {
    const seed = seeds.find((s) => s.name === name)!;
    return pemOf(seed.der, seed.label);
  };
  const rate = async (run: () => unknown, ms = 1500): Promise<string> => {
    for (let i = 0; i < 50; i++) await run(); // warm-up
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      await run();
      n++;
    }
    return Math.round((n * 1000) / (performance.now() - t0)).toLocaleString("en-US");
  };
  const forgeCsr = (text: string) => () => {
    const csr = forge.pki.certificationRequestFromPem(text);
    if (!csr.verify()) throw new Error("bad signature");
  };
  const fails = (run: () => unknown) => {
    try {
      run();
      return "";
    } catch (e) {
      return `fails: ${(e as Error).message}`;
    }
  };
  const rows: string[][] = [];
  for (const name of ["csr-rsa2048", "csr-p256-san"]) {
    const text = pem(name);
    rows.push([
      `${name}: parse + verify`,
      await rate(() => parseCsr(text)),
      fails(forgeCsr(text)) || (await rate(forgeCsr(text))),
    ]);
    const der = Buffer.from(seeds.find((s) => s.name === name)!.der).toString("binary");
    rows.push([`${name}: ASN.1 tree only`, "—", await rate(() => forge.asn1.fromDer(der))]);
  }
  for (const name of ["device-rsa", "device-p256"]) {
    const text = pem(name);
    const run = () => forge.pki.certificateFromPem(text);
    rows.push([
      `${name}: certificate fields`,
      await rate(() => readCertificate(text)),
      fails(run) || (await rate(run)),
    ]);
  }
  console.log("\nSpeed (parses/s, one thread, busy shared host)\n");
  table(["input", "ours", "node-forge"], rows);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  for (const row of [header, ...rows])
    console.log(row.map((cell, i) => (cell ?? "").padEnd(widths[i]!)).join("  "));
}

console.log(
  `node ${process.versions.node}, node-forge ${JSON.parse(readFileSync(join(PROJECT_ROOT, "node_modules/node-forge/package.json"), "utf8")).version}\n`,
);
await bundles();
await fuzz();
await speed();
