/**
 * `npm run bench:bulk`: 10,000 devices through `onramp bulk provision` end to end on the local
 * stack (in memory, this process): CSRs made with node:crypto EC P-256 keys, the registry seeded,
 * then the CLI's own code path (claims, parameter file to the local S3, StartThingRegistrationTask,
 * the emulator's task, report download, commits, activation, {serial}.crt files). Prints devices/s
 * and the time of each phase. BULK_DEVICES overrides the count.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCsr } from "#core/pki/issue.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";
import { runOnramp } from "#test/support/run-cli.ts";

const count = Number(process.env.BULK_DEVICES ?? 10_000);
const stack = await startTestStack();
const dir = mkdtempSync(join(tmpdir(), "onramp-bench-bulk-"));
try {
  const endpoints = join(dir, "endpoints.json");
  writeFileSync(endpoints, JSON.stringify(stack.endpoints));
  const serial = (i: number) => `BENCH-${String(i).padStart(6, "0")}`;
  let t = performance.now();
  mkdirSync(join(dir, "csrs"));
  for (let i = 0; i < count; i++) {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const privateKeyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    writeFileSync(
      join(dir, "csrs", `${serial(i)}.csr`),
      await createCsr({ privateKeyPem, subject: `CN=${serial(i)}` }),
    );
  }
  const csrMs = performance.now() - t;
  t = performance.now();
  await seedProduct(
    stack.services,
    { productKey: "bench", name: "Bench" },
    [...Array(count).keys()].map(serial),
  );
  const seedMs = performance.now() - t;

  t = performance.now();
  const run = await runOnramp(
    "bulk",
    "provision",
    "--csr-dir",
    join(dir, "csrs"),
    "--out",
    join(dir, "certs"),
    "--json",
    "--endpoints",
    endpoints,
  );
  const totalMs = performance.now() - t;
  if (run.error) throw run.error;
  const summary = JSON.parse(run.stdout);
  const files = readdirSync(join(dir, "certs")).filter((f) => f.endsWith(".crt")).length;
  if (summary.counts.provisioned !== count || files !== count) {
    throw new Error(
      `expected ${count} provisioned devices and files, got ${JSON.stringify(summary.counts)}, ${files} files`,
    );
  }
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const timings = summary.timings as Record<string, number>;
  const readMs = totalMs - Object.values(timings).reduce((a, b) => a + b, 0);
  console.log(`bulk provisioning: ${count} devices, task ${summary.taskStatus}`);
  console.log(
    `  end to end (onramp bulk provision): ${s(totalMs)}  ->  ${(count / (totalMs / 1000)).toFixed(0)} devices/s`,
  );
  console.log(`  read + verify CSRs (--csr-dir):     ${s(readMs)}`);
  console.log(`  claim (registry, conditional):      ${s(timings.prepareMs ?? 0)}`);
  console.log(`  upload params + start task:          ${s(timings.uploadMs ?? 0)}`);
  console.log(`  registration task (emulator):        ${s(timings.taskMs ?? 0)}`);
  console.log(`  reports + commit + activate + files: ${s(timings.commitMs ?? 0)}`);
  console.log(`  (setup, not counted: ${count} CSRs ${s(csrMs)}, registry seed ${s(seedMs)})`);
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
