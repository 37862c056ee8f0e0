/**
 * npm run bench:vend — certificate vends per second and p50/p99 latency against the local stack
 * at several concurrencies, for CSRs with EC P-256 and RSA-2048 keys and for server-made keys.
 * The stack runs in its own process (as `npm start` does, with dynalite in a third), this process
 * is the fleet of devices: it seeds through the CLI's wiring, then drives HTTP. Keys and CSRs are
 * made before the clock starts: that is device work.
 * The stack keeps its state in a fresh temporary data folder (as `npm start` does in `.onramp`),
 * so the cost of durable writes is part of the numbers; `--in-memory` measures without a disk.
 * Usage: npm run bench:vend -- [--requests N] [--concurrency 1,8,32,64] [--modes ec,rsa,server] [--in-memory]
 *
 * Stampede mode (issue 14): `npm run bench:vend -- --stampede 1000` starts the stack with
 * `--aws-quotas default` (the emulator throttles as AWS does by default, and admission control
 * holds vending to the provisioning budget), then N devices ask at once, each honouring
 * Retry-After (cli/device/vend-client.ts vendWithRetries). It reports: successes, statuses seen
 * (5xx must be 0), total time against N / budget, requests per successful vend, and orphans
 * (emulator certificates or things the registry does not name).
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ListThingsCommand } from "@aws-sdk/client-iot";
import { requestCertificate, vendWithRetries } from "#cli/device/vend-client.ts";
import { cliIotClient, cliServices, resolveTarget } from "#cli/wiring.ts";
import { AWS_DEFAULT_IOT_TPS, provisioningRate } from "#core/admission/quota-profile.ts";
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
    stampede: { type: "string" },
    serve: { type: "string" },
    "serve-data": { type: "string" },
    "serve-quotas": { type: "string" },
  },
});

if (values.serve) {
  // Child: the local stack (data in `--serve-data`, else in memory); its endpoints file goes into
  // the given folder.
  const stack = await startLocalStack({
    ...(values["serve-data"] ? { dataDir: values["serve-data"] } : {}),
    logger: silentLogger,
    ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0 },
    ...(values["serve-quotas"] === "default" ? { awsQuotas: "default" as const } : {}),
  });
  writeFileSync(join(values.serve, "endpoints.json"), JSON.stringify(stack.endpoints));
  process.send?.({ ready: true });
  process.on("disconnect", () => void stack.close().then(() => process.exit(0)));
} else if (values.stampede) {
  await stampede(Number(values.stampede));
} else {
  await measure();
}

/** Starts the stack in a child process (data in a temporary folder); resolves its target. */
async function startChild(extra: string[]) {
  const dir = mkdtempSync(join(tmpdir(), "onramp-bench-vend-"));
  const child = fork(
    new URL(import.meta.url).pathname,
    ["--serve", dir, "--serve-data", join(dir, "data"), ...extra],
    { execArgv: ["--import", "tsx"] },
  );
  await new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve());
    child.once("exit", (code) => reject(new Error(`local stack exited (${code})`)));
  });
  const target = await resolveTarget({ endpoints: join(dir, "endpoints.json") });
  return { dir, child, target };
}

async function stampede(devices: number): Promise<void> {
  if (!Number.isInteger(devices) || devices < 1) throw new Error("--stampede needs a number of devices");
  const budget = provisioningRate({ ...AWS_DEFAULT_IOT_TPS });
  const { dir, child, target } = await startChild(["--serve-quotas", "default"]);
  const services = cliServices(target);
  const productKey = "stampede";
  const serials = Array.from({ length: devices }, (_, i) => `stampede-${String(i).padStart(5, "0")}`);
  const product = await seedProduct(
    services,
    { productKey, name: productKey, authMode: "product-secret" },
    serials,
  );
  const csrs = await Promise.all(
    serials.map(async (serial) =>
      createCsr({
        privateKeyPem: (await createKeyPair("EC-P256")).privateKeyPem,
        subject: { commonName: serial },
      }),
    ),
  );
  console.log(
    `vend stampede: ${devices} devices at once, stack with --aws-quotas default (budget ${budget} vends/s); ${machine()}`,
  );
  const statuses = new Map<number, number>();
  let requests = 0;
  let succeeded = 0;
  const started = performance.now();
  await Promise.all(
    serials.map(async (serial, i) => {
      const res = await vendWithRetries(
        {
          apiUrl: target.apiUrl!,
          serialNumber: serial,
          productKey,
          secret: product.productSecret,
          keyMode: "csr",
          csr: csrs[i]!,
        },
        {
          maxAttempts: 100,
          maxWaitSeconds: 600,
          onRetry: (status) => statuses.set(status, (statuses.get(status) ?? 0) + 1),
        },
      );
      requests += res.attempts;
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 201) succeeded++;
      else console.error(`${serial}: gave up with ${res.status} ${JSON.stringify(res.body)}`);
    }),
  );
  const seconds = (performance.now() - started) / 1000;

  // Orphans: certificates or things in the emulator that no registry device names.
  const named = new Set<string>();
  for (const serial of serials) {
    const device = await services.registry.getDevice(serial);
    if (device?.certificateId) named.add(device.certificateId);
  }
  let orphanCertificates = 0;
  for await (const { certificateId } of services.iot.listCertificates()) {
    if (!named.has(certificateId)) orphanCertificates++;
  }
  const iot = cliIotClient(target);
  let orphanThings = 0;
  let nextToken: string | undefined;
  const provisioned = new Set(serials);
  do {
    const page = await iot.send(new ListThingsCommand({ maxResults: 250, nextToken }));
    for (const thing of page.things ?? []) if (!provisioned.has(thing.thingName ?? "")) orphanThings++;
    nextToken = page.nextToken;
  } while (nextToken);
  iot.destroy();

  const ideal = devices / budget;
  const fiveXx = [...statuses].filter(([status]) => status >= 500).reduce((n, [, count]) => n + count, 0);
  const summary = {
    devices,
    succeeded,
    seconds: Number(seconds.toFixed(1)),
    idealSeconds: ideal,
    timeVsIdeal: Number((seconds / ideal).toFixed(3)),
    requests,
    requestsPerSuccessfulVend: Number((requests / Math.max(1, succeeded)).toFixed(2)),
    statuses: Object.fromEntries([...statuses].sort(([a], [b]) => a - b)),
    fiveXx,
    orphanCertificates,
    orphanThings,
  };
  console.log(JSON.stringify(summary, null, 2));
  services.close();
  child.disconnect();
  rmSync(dir, { recursive: true, force: true });
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
