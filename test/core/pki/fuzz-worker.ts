/**
 * Runs the DER-reader fuzz corpus in a worker thread, so that der-fuzz.test.ts can stop a parse
 * that hangs (a synchronous loop cannot be interrupted from the thread that runs it). Posts
 * `{type: "case", index, how}` before each case, `{type: "violation", ...}` for each finding and
 * `{type: "done", ...}` at the end.
 */
import { X509Certificate } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import { readCsrDnsNames, readRsaPssParameters } from "#core/pki/csr-attributes.ts";
import {
  certificateFields,
  csrParts,
  readTime,
  signedParts,
  spkiAlgorithmOid,
  spkiKeyBits,
} from "#core/pki/der.ts";
import { countNameFields, readDistinguishedName } from "#core/pki/distinguished-name-reader.ts";
import { InvalidCertificateError, InvalidCsrError, parseCsr, readCertificate } from "#core/pki/index.ts";
import { readPemBlocks } from "#core/pki/pem.ts";
import { type FuzzCase, fuzzCases, type Seed } from "./fuzz-corpus.ts";

export type FuzzJob = { seeds: Seed[]; numRuns: number; seed: number; slowMs: number };
export type FuzzMessage =
  | { type: "case"; index: number; how: string }
  | { type: "violation"; how: string; target: string; problem: string }
  | {
      type: "done";
      cases: number;
      accepted: Record<string, number>;
      rejected: Record<string, number>;
      slowestMs: number;
    };

const job = workerData as FuzzJob;
const post = (message: FuzzMessage) => parentPort!.postMessage(message);

/** What each seed parses to, to compare an accepted mutant with. */
const expected = new Map<string, { fingerprint: string; subject: string }>();
for (const seed of job.seeds.filter((s) => s.label === "CERTIFICATE REQUEST")) {
  const pem = `-----BEGIN ${seed.label}-----\n${Buffer.from(seed.der).toString("base64")}\n-----END ${seed.label}-----\n`;
  // Seeds the policy refuses (Ed25519) have no mutant to accept.
  const csr = await parseCsr(pem).catch(() => undefined);
  if (csr) expected.set(seed.name, { fingerprint: csr.publicKeyFingerprint, subject: csr.subject.text });
}

/** The low-level readers return undefined for what they cannot read: they must never throw. */
function lowLevel(der: Uint8Array): void {
  const parts = csrParts(der);
  if (parts) {
    readDistinguishedName(parts.subjectNameDer);
    countNameFields(parts.subjectNameDer);
    if (parts.attributes) readCsrDnsNames(der, parts.attributes);
    if (parts.signatureParameters) readRsaPssParameters(parts.signatureParameters);
    spkiAlgorithmOid(parts.spki);
    spkiKeyBits(parts.spki);
  }
  const fields = certificateFields(der);
  if (fields) {
    readDistinguishedName(fields.issuerDer);
    readDistinguishedName(fields.subjectDer);
    readTime(fields.notBefore.tag, fields.notBefore.content);
    readTime(fields.notAfter.tag, fields.notAfter.content);
  }
  signedParts(der);
  readDistinguishedName(der);
  readRsaPssParameters(der);
}

const accepted: Record<string, number> = {};
const rejected: Record<string, number> = {};
let slowestMs = 0;
let index = 0;
for (const c of fuzzCases(job.seeds, job.numRuns, job.seed)) {
  index++;
  post({ type: "case", index, how: c.how });
  await check(c, "low-level readers", async () => {
    const der = readPemBlocks(c.pem)?.[0]?.der;
    if (der) lowLevel(der);
  });
  // Each case goes to both readers: a certificate where a CSR is expected and vice versa.
  const csrPem = c.pem.replaceAll(c.label, "CERTIFICATE REQUEST");
  await check(c, "parseCsr", async () => {
    try {
      const csr = await parseCsr(csrPem);
      count(accepted, "parseCsr");
      // Proof of possession: an accepted mutant still carries the seed's signed key and subject.
      const seed = expected.get(c.how.split(":")[0]!);
      if (!seed || seed.fingerprint !== csr.publicKeyFingerprint || seed.subject !== csr.subject.text) {
        throw new Error(`accepted a CSR that is not its seed's (${csr.subject.text})`);
      }
    } catch (error) {
      if (!(error instanceof InvalidCsrError)) throw error;
      count(rejected, `parseCsr ${error.reason}`);
    }
  });
  const certificatePem = c.pem.replaceAll(c.label, "CERTIFICATE");
  await check(c, "readCertificate", async () => {
    try {
      const facts = readCertificate(certificatePem);
      count(accepted, "readCertificate");
      // Differential: what OpenSSL reads from the same DER.
      const openssl = new X509Certificate(facts.der);
      if (
        openssl.serialNumber.toLowerCase().replace(/^0+/, "") !== facts.serialNumber.replace(/^0+/, "") ||
        new Date(openssl.validFrom).getTime() !== Math.floor(facts.notBefore.getTime() / 1000) * 1000 ||
        new Date(openssl.validTo).getTime() !== Math.floor(facts.notAfter.getTime() / 1000) * 1000
      ) {
        throw new Error("serial or validity differs from OpenSSL's reading");
      }
    } catch (error) {
      if (!(error instanceof InvalidCertificateError)) throw error;
      count(rejected, `readCertificate ${error.reason}`);
    }
  });
}
post({ type: "done", cases: index, accepted, rejected, slowestMs });

async function check(c: FuzzCase, target: string, run: () => Promise<void>): Promise<void> {
  const started = performance.now();
  try {
    await run();
  } catch (error) {
    const problem = `${(error as Error)?.constructor?.name}: ${String((error as Error)?.message ?? error)}`;
    post({ type: "violation", how: c.how, target, problem: problem.slice(0, 300) });
  }
  const ms = performance.now() - started;
  slowestMs = Math.max(slowestMs, ms);
  if (ms > job.slowMs) {
    post({ type: "violation", how: c.how, target, problem: `took ${ms.toFixed(0)} ms` });
  }
}

function count(tally: Record<string, number>, key: string): void {
  tally[key] = (tally[key] ?? 0) + 1;
}
