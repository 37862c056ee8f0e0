/**
 * npm run bench:vend — certificate vends per second and p50/p99 latency against the local stack
 * at several concurrencies, for CSRs with EC P-256 and RSA-2048 keys and for server-made keys.
 * The stack runs in its own process (as `npm start` does, with dynalite in a third), this process
 * is the fleet of devices: it seeds through the CLI's wiring, then drives HTTP. Keys and CSRs are
 * made before the clock starts: that is device work.
 * The stack keeps its state in a fresh temporary data folder (as `npm start` does in `.onramp`),
 * so the cost of durable writes is part of the numbers; `--in-memory` measures without a disk.
 * Usage: npm run bench:vend -- [--requests N] [--concurrency 1,8,32,64] [--modes ec,rsa,server] [--in-memory]
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { cliServices, resolveTarget } from "#cli/wiring.ts";
import { silentLogger } from "#core/logger.ts";
import { createCsr, createKeyPair, type KeyPairAlgorithm } from "#core/pki/issue.ts";
import { startLocalStack } from "#local/stack.ts";
import { seedProduct } from "#test/support/local-stack.ts";
import { childPids, machine, percentile, processCpuMs, runLoad } from "./stats.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "400" },
    concurrency: { type: "string", default: "1,8,32,64" },
    modes: { type: "string", default: "ec,rsa,server" },
    "in-memory": { type: "boolean", default: false },
    serve: { type: "string" },
    "serve-data": { type: "string" },
  },
});

if (values.serve) {
  // Child: the local stack (data in `--serve-data`, else in memory); its endpoints file goes into
  // the given folder.
  const stack = await startLocalStack({
    ...(values["serve-data"] ? { dataDir: values["serve-data"] } : {}),
    logger: silentLogger,
    ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0 },
  });
  writeFileSync(join(values.serve, "endpoints.json"), JSON.stringify(stack.endpoints));
  process.send?.({ ready: true });
  process.on("disconnect", () => void stack.close().then(() => process.exit(0)));
} else {
  await measure();
}

async function measure(): Promise<void> {
  const requests = Number(values.requests);
  const levels = values.concurrency.split(",").map(Number);
  const modes = values.modes.split(",");
  const algorithms: Record<string, KeyPairAlgorithm | undefined> = {
    ec: "EC-P256",
    rsa: "RSA-2048",
    server: undefined,
  };

  const dir = mkdtempSync(join(tmpdir(), "onramp-bench-vend-"));
  const persisted = !values["in-memory"];
  const child = fork(
    new URL(import.meta.url).pathname,
    ["--serve", dir, ...(persisted ? ["--serve-data", join(dir, "data")] : [])],
    { execArgv: ["--import", "tsx"] },
  );
  await new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve());
    child.once("exit", (code) => reject(new Error(`local stack exited (${code})`)));
  });
  const target = await resolveTarget({ endpoints: join(dir, "endpoints.json") });
  const services = cliServices(target);

  console.log(
    `vend benchmark: ${requests} requests per run, stack state ${persisted ? "in a data folder" : "in memory"}; ${machine()}`,
  );
  // CPU per vend by process: this load generator, the stack (API + IoT/Secrets emulators), dynalite.
  const processes = {
    devices: process.pid,
    stack: child.pid!,
    dynalite: childPids(child.pid!)[0] ?? Number.NaN,
  };
  const cpu = () => Object.fromEntries(Object.entries(processes).map(([k, pid]) => [k, processCpuMs(pid)]));
  console.log("mode      conc  vends/s   p50 ms   p99 ms   errors   CPU ms/vend: devices stack dynalite");
  let run = 0;
  for (const mode of modes) {
    const algorithm = algorithms[mode];
    for (const concurrency of levels) {
      const productKey = `bench-${run++}`;
      const serials = Array.from({ length: requests }, (_, i) => `${productKey}-${i}`);
      const product = await seedProduct(
        services,
        { productKey, name: productKey, authMode: "product-secret", allowServerKeys: mode === "server" },
        serials,
      );
      const csrs = algorithm
        ? await Promise.all(
            serials.map(async (serial) =>
              createCsr({
                privateKeyPem: (await createKeyPair(algorithm)).privateKeyPem,
                subject: { commonName: serial },
              }),
            ),
          )
        : [];
      let errors = 0;
      const cpuBefore = cpu();
      const { latencies, seconds } = await runLoad(requests, concurrency, async (i) => {
        const csr = csrs[i];
        const res = await requestCertificate({
          apiUrl: target.apiUrl!,
          serialNumber: serials[i]!,
          productKey,
          secret: product.productSecret,
          keyMode: csr ? "csr" : "server",
          ...(csr ? { csr } : {}),
        });
        if (res.status !== 201 && errors++ === 0) {
          console.error(`first failed vend (${mode}): ${res.status} ${JSON.stringify(res.body)}`);
        }
      });
      const cpuAfter = cpu();
      const perVend = Object.keys(processes)
        .map((k) => ((cpuAfter[k]! - cpuBefore[k]!) / requests).toFixed(1).padStart(k.length + 1))
        .join("");
      console.log(
        `${mode.padEnd(8)} ${String(concurrency).padStart(5)} ${(requests / seconds).toFixed(0).padStart(8)} ${percentile(latencies, 50).toFixed(1).padStart(8)} ${percentile(latencies, 99).toFixed(1).padStart(8)} ${String(errors).padStart(8)}              ${perVend}`,
      );
    }
  }
  services.close();
  child.disconnect();
  rmSync(dir, { recursive: true, force: true });
}
