/**
 * Fuzzing the Lambda path's DER readers (der.ts, distinguished-name-reader.ts,
 * certificate-reader.ts, csr.ts, csr-attributes.ts, signature.ts) with mutated openssl-made CSRs
 * and certificates (fuzz-corpus.ts): only InvalidCsrError / InvalidCertificateError, never a
 * crash, another exception or a hang; the low-level readers never throw; an accepted CSR mutant
 * still carries its seed's key and subject; an accepted certificate reads as OpenSSL reads it.
 *
 * `npm test` runs 1,500 cases (a few seconds); FUZZ_RUNS=50000 FUZZ_SEED=n runs more. The corpus
 * runs in a worker thread so a parse that hangs is stopped and named instead of hanging the suite.
 * Below: regression tests for what the fuzzer found.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { readRsaPssParameters } from "#core/pki/csr-attributes.ts";
import { readTime, sequence, tlv } from "#core/pki/der.ts";
import { readDistinguishedName, readOid } from "#core/pki/distinguished-name-reader.ts";
import { InvalidCertificateError, InvalidCsrError, parseCsr, readCertificate } from "#core/pki/index.ts";
import { readPemBlocks } from "#core/pki/pem.ts";
import { fuzzSeeds, nested, pemOf } from "./fuzz-corpus.ts";
import type { FuzzJob, FuzzMessage } from "./fuzz-worker.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_122);
/** A case slower than this is a finding (the quadratic inputs below took seconds). */
const SLOW_MS = 1000;
/** No word from the worker for this long: the case it is on hangs. */
const HANG_MS = 15_000;

/** Runs the corpus in a worker; resolves with its messages, or names the case that hung. */
function runFuzz(job: FuzzJob): Promise<FuzzMessage[]> {
  const url = new URL("./fuzz-worker.ts", import.meta.url).href;
  const worker = new Worker(
    `import("tsx/esm/api").then((api) => { api.register(); return import(${JSON.stringify(url)}); });`,
    { eval: true, workerData: job },
  );
  const messages: FuzzMessage[] = [];
  return new Promise((resolve, reject) => {
    let last = Date.now();
    let current = "(start-up)";
    const watchdog = setInterval(() => {
      if (Date.now() - last < HANG_MS) return;
      clearInterval(watchdog);
      void worker.terminate();
      reject(new Error(`a parse hangs (no progress for ${HANG_MS} ms): ${current}`));
    }, 500);
    worker.on("message", (message: FuzzMessage) => {
      last = Date.now();
      if (message.type === "case") current = message.how;
      else messages.push(message);
      if (message.type === "done") {
        clearInterval(watchdog);
        void worker.terminate();
        resolve(messages);
      }
    });
    worker.on("error", (error) => {
      clearInterval(watchdog);
      reject(error);
    });
  });
}

describe("DER readers: fuzzing with mutated openssl CSRs and certificates", () => {
  it(`${RUNS} cases (seed ${SEED}): typed errors only, no hang, nothing forged accepted`, async () => {
    const seeds = fuzzSeeds();
    const messages = await runFuzz({ seeds, numRuns: RUNS, seed: SEED, slowMs: SLOW_MS });
    const violations = messages.filter((m) => m.type === "violation");
    assert.deepEqual(
      violations.slice(0, 10).map((v) => `${v.target} | ${v.how} | ${v.problem}`),
      [],
      `${violations.length} violations`,
    );
    const done = messages.find((m) => m.type === "done");
    assert.ok(done?.type === "done");
    assert.equal(done.cases, RUNS);
    // The corpus reaches past the framing checks: rejections for more than one reason.
    assert.ok(Object.keys(done.rejected).length >= 4, JSON.stringify(done.rejected));
  });
});

describe("DER readers: what the fuzzer found", () => {
  it("a 256 KB text of BEGIN lines is refused in linear time (the PEM regex rescanned: 4 s)", () => {
    const text = "-----BEGIN A-----".repeat(15_000);
    const started = performance.now();
    assert.equal(readPemBlocks(text), undefined);
    assert.throws(() => readCertificate(text), InvalidCertificateError);
    assert.ok(performance.now() - started < 300, `${performance.now() - started} ms`);
  });

  it("PEM framing still refuses what it refused: no END, mismatched labels, BEGIN between blocks", () => {
    const block = pemOf(Uint8Array.of(0x30, 0x00), "CERTIFICATE");
    assert.deepEqual(readPemBlocks(`junk\n${block}junk\n${block}`)?.length, 2);
    assert.equal(readPemBlocks(`${block}-----BEGIN CERTIFICATE-----\nMAA=\n`), undefined);
    assert.equal(readPemBlocks(block.replace("END CERTIFICATE", "END X509 CRL")), undefined);
    assert.equal(readPemBlocks(`-----BEGIN lower-----\n${block}`), undefined);
    assert.equal(readPemBlocks(block.replace("MAA=", "MAA=\n-----BEGIN A-----\nMAA=")), undefined);
    assert.equal(readPemBlocks(block.replace("MAA=", "")), undefined);
    assert.deepEqual(readPemBlocks("no PEM here"), []);
  });

  it("an OID arc longer than 20 bytes is refused (a 190 KB arc in a name took seconds)", () => {
    const arc = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i === n - 1 ? 0x01 : 0x81));
    const name = (oid: Uint8Array) =>
      sequence(tlv(0x31, sequence(tlv(0x06, oid), tlv(0x0c, Buffer.from("x")))));
    const started = performance.now();
    assert.equal(readOid(arc(190_000)), undefined);
    assert.equal(readDistinguishedName(name(arc(190_000))), undefined);
    assert.ok(performance.now() - started < 300, `${performance.now() - started} ms`);
    // 2.25.<128-bit UUID> (19 bytes of 7 bits) still reads.
    const uuid = 0xf81d4fae7dec11d0a76500a0c91e6bf6n;
    const bytes: number[] = [];
    for (let v = uuid; v > 0n; v >>= 7n) bytes.unshift(Number(v & 0x7fn) | (bytes.length ? 0x80 : 0));
    assert.equal(readOid(Uint8Array.of(0x69, ...bytes)), `2.25.${uuid}`);
    // A certificate whose subject carries the long arc: refused as MALFORMED, quickly.
    const time = tlv(0x17, Buffer.from("250101000000Z"));
    const certificate = sequence(
      sequence(
        tlv(0xa0, tlv(0x02, Uint8Array.of(2))),
        tlv(0x02, Uint8Array.of(1)),
        sequence(tlv(0x06, Uint8Array.of(0x2a, 0x03))),
        name(Uint8Array.of(0x55, 0x04, 0x03)),
        sequence(time, time),
        name(arc(180_000)),
        sequence(sequence(tlv(0x06, Uint8Array.of(0x2a, 0x03))), tlv(0x03, Uint8Array.of(0))),
      ),
      sequence(tlv(0x06, Uint8Array.of(0x2a, 0x03))),
      tlv(0x03, Uint8Array.of(0)),
    );
    const t0 = performance.now();
    assert.throws(() => readCertificate(pemOf(certificate, "CERTIFICATE")), InvalidCertificateError);
    assert.ok(performance.now() - t0 < 300, `${performance.now() - t0} ms`);
  });

  it("30,000 nested SEQUENCEs and a 4 GB length field: MALFORMED, no deep recursion, no allocation", async () => {
    const deep = nested(30_000);
    assert.throws(() => readCertificate(pemOf(deep, "CERTIFICATE")), InvalidCertificateError);
    await assert.rejects(parseCsr(pemOf(nested(2_000), "CERTIFICATE REQUEST")), InvalidCsrError);
    const huge = Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00);
    assert.throws(() => readCertificate(pemOf(huge, "CERTIFICATE")), InvalidCertificateError);
    await assert.rejects(parseCsr(pemOf(huge, "CERTIFICATE REQUEST")), InvalidCsrError);
  });

  it("a time with minute 63 or second 60 is refused, as OpenSSL refuses it (it was read as 17:03)", () => {
    const utc = (text: string) => readTime(0x17, Buffer.from(text));
    assert.equal(utc("261230166356Z"), undefined);
    assert.equal(utc("261230164360Z"), undefined);
    assert.equal(utc("261230244356Z"), undefined);
    assert.equal(readTime(0x18, Buffer.from("20261230166356Z")), undefined);
    assert.equal(utc("261230164356Z")?.toISOString(), "2026-12-30T16:43:56.000Z");
    assert.equal(readTime(0x18, Buffer.from("20501230235959.5Z"))?.toISOString(), "2050-12-30T23:59:59.500Z");
  });

  it("RSA-PSS parameters with a field other than [0]-[3] are refused, not skipped", () => {
    const sha256 = sequence(tlv(0x06, Buffer.from("608648016503040201", "hex")));
    const salt = tlv(0xa2, tlv(0x02, Uint8Array.of(32)));
    assert.deepEqual(readRsaPssParameters(sequence(tlv(0xa0, sha256), salt)), {
      name: "RSA-PSS",
      hash: { name: "SHA-256" },
      saltLength: 32,
    });
    assert.equal(readRsaPssParameters(sequence(tlv(0xa0, sha256), tlv(0x50, sha256), salt)), undefined);
  });
});
