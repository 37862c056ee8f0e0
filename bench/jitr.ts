/**
 * npm run bench:jitr — just-in-time registration over MQTT against the local stack: per device the
 * first-connect-to-active latency (first CONNECT attempt to a CONNACK, p50/p99), registrations
 * per second for a batch of devices connecting at once, and connection attempts per device, at
 * several batch sizes.
 *
 * Setup, before the clock starts: a device CA is created and registered with the registration code
 * (`onramp ca create` + `onramp ca register`: createSelfSignedCa, registerCaCertificate over the
 * CLI's IoT client), a product trusting it with the serials imported (`products create --trust-ca`,
 * `registry import`: the same use cases through the CLI's wiring), and one EC P-256 device key and
 * certificate per serial (`onramp device issue`: CertificateIssuer, CN = serial). One device
 * registers before the clock (JIT, connection pools).
 *
 * Each device is a real `mqtt` client over TLS (client certificate + the CA in the chain, the
 * endpoint verified against the local root CA) and retries like firmware does: the first
 * connection is dropped by design (the certificate is registered PENDING_ACTIVATION and the JITR
 * event sent to the handler), so it waits 100 ms, then 200, 400, ... (capped), and connects again
 * until it gets a CONNACK. Every device of a batch starts at the same moment; a batch ends when
 * every device is connected (or has given up). Each batch size gets an equal share of the devices,
 * in whole batches. Registrations per second = devices that got active / summed batch wall time.
 *
 * Why the stack runs in a child process (as in bench/vend.ts, and as `npm start` runs it): the
 * devices' TLS handshakes and MQTT clients would otherwise share the stack's event loop and inflate
 * the very latency measured. The MQTT endpoint needs no in-process access: devices reach it over
 * TLS like real ones. What the benchmark wants to see inside the stack (when each connection was
 * decided, when the JITR handler activated the certificate) is already in the stack's structured
 * log lines (`mqtt: connect`, `jitr: certificate activated`); the child records them with a Logger
 * and sends them over the IPC channel after each batch. Both processes stamp times with
 * `performance.timeOrigin + performance.now()` (the same wall clock, sub-millisecond).
 *
 * Bounded: at most `--devices` registrations (each device used once), at most `--max-attempts`
 * attempts per device, `--max-seconds` for all measured batches (later batches are skipped and
 * said so). Everything listens on and connects to 127.0.0.1.
 *
 * `--other-cas N` registers N more CAs (auto-registration on) before the devices' CA: the local
 * endpoint matches a certificate it has not seen against every registered CA in registration
 * order, so this shows what the number of CAs costs a first connection.
 *
 * Usage: npm run bench:jitr -- [--devices 200] [--concurrency 1,16,64] [--backoff 100]
 *   [--backoff-cap 1600] [--max-attempts 12] [--max-seconds 150] [--other-cas 0]
 *
 * Roll-out: npm run bench:jitr -- --rollout 1000 [--max-seconds 600]: N devices at once against
 * the stack with AWS's default quotas (see rollout() below).
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { MqttClient } from "mqtt";
import { AwsCaRegistry } from "#adapters/iot-ca-registry.ts";
import { cliIotClient, cliServices, resolveTarget } from "#cli/wiring.ts";
import { jitrConsumers, jitrRegistrationsPerSecond } from "#core/jitr/budget.ts";
import { registerCaCertificate } from "#core/jitr/register-ca-certificate.ts";
import type { Logger } from "#core/logger.ts";
import { CertificateIssuer, createKeyPair, createSelfSignedCa } from "#core/pki/issue.ts";
import { type LocalStack, startLocalStack } from "#local/stack.ts";
import { RULE_TARGETS } from "#templates/catalog.ts";
import { connectDevice, endClient } from "#test/local/mqtt/mqtt-device.ts";
import { seedProduct } from "#test/support/local-stack.ts";
import { childPids, machine, percentile, processCpuMs } from "./stats.ts";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { values } = parseArgs({
  options: {
    devices: { type: "string", default: "200" },
    concurrency: { type: "string", default: "1,16,64" },
    backoff: { type: "string", default: "100" },
    "backoff-cap": { type: "string", default: "1600" },
    "max-attempts": { type: "string", default: "12" },
    "max-seconds": { type: "string", default: "150" },
    "other-cas": { type: "string", default: "0" },
    rollout: { type: "string" },
    serve: { type: "string" },
    "serve-quotas": { type: "string" },
  },
});

/** A wall-clock timestamp in ms with sub-ms precision, comparable across the two processes. */
const now = () => performance.timeOrigin + performance.now();

/** A stack log line as the child records it: message, the fields that matter here, and when. */
type StackEvent = {
  at: number;
  message: string;
  clientId?: string;
  serialNumber?: string;
  outcome?: string;
  reason?: string;
};

/** Messages of the child: ready (with where the files are), the events since the last ask, or an audit. */
type ChildMessage = { ready: true } | { events: StackEvent[] } | { audit: RolloutAudit };

if (values.serve) {
  await serve(values.serve, values["serve-quotas"] === "default" ? "default" : "off");
} else if (values.rollout) {
  await rollout(Number(values.rollout));
} else {
  await measure();
}

/** Child: the local stack in memory; records its log lines and sends them when asked. */
async function serve(dir: string, awsQuotas: "default" | "off"): Promise<void> {
  let events: StackEvent[] = [];
  const record =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      if (level === "debug") return;
      const fields = Object.assign({}, ...extra) as Record<string, unknown>;
      const pick = (key: string) => (typeof fields[key] === "string" ? { [key]: fields[key] as string } : {});
      events.push({
        at: now(),
        message,
        ...pick("clientId"),
        ...pick("serialNumber"),
        ...pick("outcome"),
        ...pick("reason"),
      });
    };
  const logger: Logger = {
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
  };
  const stack = await startLocalStack({ logger, ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0 }, awsQuotas });
  writeFileSync(join(dir, "endpoints.json"), JSON.stringify(stack.endpoints));
  writeFileSync(join(dir, "root-ca.pem"), stack.rootCaPem);
  process.on("message", (ask: { events?: true; audit?: { serials: string[]; caCertificateId: string } }) => {
    if (ask.audit) {
      void audit(stack, ask.audit.serials, ask.audit.caCertificateId).then((result) =>
        process.send?.({ audit: result } satisfies ChildMessage),
      );
      return;
    }
    const message: ChildMessage = { events };
    events = [];
    process.send?.(message);
  });
  process.send?.({ ready: true } satisfies ChildMessage);
  process.on("disconnect", () => void stack.close().then(() => process.exit(0)));
}

/** One device's credentials: EC P-256 key, certificate (CN = serial) followed by the CA's. */
type Device = { serial: string; keyPem: string; chainPem: string };

/** What one device's first connection to active looked like. */
type DeviceRun = {
  serial: string;
  /** First CONNECT attempt started (wall clock, ms). */
  startedAt: number;
  /** CONNACK received; undefined when the device gave up. */
  connackAt?: number;
  attempts: number;
  client?: MqttClient;
};

type Options = {
  url: string;
  caPem: string;
  backoffMs: number;
  backoffCapMs: number;
  maxAttempts: number;
  deadline: number;
};

/** One connection attempt of `device` (its key and the CA chain; client id = serial), 10 s at most. */
function attempt(device: Device, url: string, caPem: string) {
  return connectDevice({
    url,
    caPem,
    clientId: device.serial,
    credentials: { keyPem: device.keyPem, certPem: device.chainPem },
    timeoutMs: 10_000,
  });
}

/** A device powering on: connect, and on a refusal back off (doubling, capped) and connect again. */
async function firstConnect(device: Device, options: Options): Promise<DeviceRun> {
  const run: DeviceRun = { serial: device.serial, startedAt: now(), attempts: 0 };
  let wait = options.backoffMs;
  while (run.attempts < options.maxAttempts && now() < options.deadline) {
    run.attempts++;
    const result = await attempt(device, options.url, options.caPem);
    if (result.connected) {
      run.connackAt = now();
      run.client = result.client;
      return run;
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, options.backoffCapMs);
  }
  return run;
}

/** Per-device times inside the stack, from its log lines (undefined where a line is missing). */
type Stages = { registered?: number; activated?: number; accepted?: number; pendingRefusals: number };

function stagesBySerial(events: StackEvent[]): Map<string, Stages> {
  const stages = new Map<string, Stages>();
  const of = (serial: string) => {
    let s = stages.get(serial);
    if (!s) {
      s = { pendingRefusals: 0 };
      stages.set(serial, s);
    }
    return s;
  };
  for (const e of events) {
    if (e.message === "mqtt: connect" && e.clientId) {
      const s = of(e.clientId);
      if (e.reason === "jitr-registered") s.registered ??= e.at;
      else if (e.reason === "certificate-pending-activation") s.pendingRefusals++;
      else if (e.outcome === "accepted") s.accepted ??= e.at;
    } else if (e.message === "jitr: certificate activated" && e.serialNumber) {
      of(e.serialNumber).activated ??= e.at;
    }
  }
  return stages;
}

/** The stack's connect decisions and JITR outcomes of a level, counted, e.g. `refused/jitr-registered 16`. */
function summarize(events: StackEvent[]): string {
  const counts = new Map<string, number>();
  for (const e of events) {
    const key =
      e.message === "mqtt: connect"
        ? `connect ${e.outcome}${e.reason ? `/${e.reason}` : ""}`
        : e.message.replace(/; the event will be retried$/, "");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, n]) => `${key} ${n}`).join(", ");
}

/** p50 and p99 of a list of numbers, formatted. */
function p50p99(samples: number[]): [string, string] {
  const sorted = samples.filter(Number.isFinite).sort((a, b) => a - b);
  return [percentile(sorted, 50).toFixed(1), percentile(sorted, 99).toFixed(1)];
}

/** What one batch size gave, for the tables. */
type LevelResult = {
  concurrency: number;
  batches: number;
  devices: number;
  failed: number;
  registrationsPerSecond: number;
  latency: [string, string];
  attemptsMean: number;
  attemptsMax: number;
  /** p50 ms per device: first attempt → registered, handler (p50, p99), activated → accepted, accepted → CONNACK. */
  toRegistered: string;
  handler: [string, string];
  activatedToAccepted: string;
  acceptedToConnack: string;
  earlyRetries: number;
  cpuPerRegistration: Record<string, number>;
  stackLog: string;
};

function summarizeLevel(
  concurrency: number,
  batches: number,
  wallMs: number,
  runs: DeviceRun[],
  events: StackEvent[],
  cpuPerRegistration: Record<string, number>,
): LevelResult {
  const active = runs.filter((r) => r.connackAt !== undefined);
  const stages = stagesBySerial(events);
  const per = runs.map((run) => ({ run, stage: stages.get(run.serial) }));
  const span = (samples: Array<number | undefined>[]) =>
    p50p99(samples.map(([to, from]) => (to ?? Number.NaN) - (from ?? Number.NaN)));
  return {
    concurrency,
    batches,
    devices: runs.length,
    failed: runs.length - active.length,
    registrationsPerSecond: active.length / (wallMs / 1000),
    latency: p50p99(active.map((r) => r.connackAt! - r.startedAt)),
    attemptsMean: runs.reduce((sum, r) => sum + r.attempts, 0) / runs.length,
    attemptsMax: Math.max(...runs.map((r) => r.attempts)),
    toRegistered: span(per.map(({ run, stage }) => [stage?.registered, run.startedAt]))[0],
    handler: span(per.map(({ stage }) => [stage?.activated, stage?.registered])),
    activatedToAccepted: span(per.map(({ stage }) => [stage?.accepted, stage?.activated]))[0],
    acceptedToConnack: span(per.map(({ run, stage }) => [run.connackAt, stage?.accepted]))[0],
    earlyRetries: per.reduce((sum, { stage }) => sum + (stage?.pendingRefusals ?? 0), 0) / runs.length,
    cpuPerRegistration,
    stackLog: summarize(events),
  };
}

/** Prints the device view, where the time goes, the stack's log counts, and a markdown table. */
function printResults(results: LevelResult[]): void {
  const table = (header: string[], rows: string[][]) => {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    for (const row of [header, ...rows]) console.log(row.map((c, i) => c.padStart(widths[i]!)).join("  "));
  };
  console.log("\nDevices (first CONNECT attempt to CONNACK):");
  table(
    ["at once", "devices", "batches", "reg/s", "p50 ms", "p99 ms", "attempts/dev", "max", "failed"],
    results.map((r) => [
      String(r.concurrency),
      String(r.devices),
      String(r.batches),
      r.registrationsPerSecond.toFixed(1),
      ...r.latency,
      r.attemptsMean.toFixed(2),
      String(r.attemptsMax),
      String(r.failed),
    ]),
  );
  console.log(
    "\nWhere the time goes (p50 ms per device; stack times from its log) and CPU per registration:",
  );
  table(
    [
      "at once",
      "attempt→registered",
      "JITR handler (p99)",
      "activated→accepted",
      "accepted→CONNACK",
      "early retries/dev",
      "CPU ms: devices",
      "stack",
      "dynalite",
    ],
    results.map((r) => [
      String(r.concurrency),
      r.toRegistered,
      `${r.handler[0]} (${r.handler[1]})`,
      r.activatedToAccepted,
      r.acceptedToConnack,
      r.earlyRetries.toFixed(2),
      ...["devices", "stack", "dynalite"].map((k) => (r.cpuPerRegistration[k] ?? Number.NaN).toFixed(1)),
    ]),
  );
  console.log("\nStack log, counted:");
  for (const r of results) console.log(`  ${r.concurrency} at once: ${r.stackLog}`);
  console.log("\nMarkdown:\n");
  console.log(
    "| devices at once | devices | registrations/s | p50 ms | p99 ms | attempts/device | attempt → registered | JITR handler p50 (p99) | activated → accepted | accepted → CONNACK |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results) {
    console.log(
      `| ${r.concurrency} | ${r.devices} | ${r.registrationsPerSecond.toFixed(1)} | ${r.latency[0]} | ${r.latency[1]} | ${r.attemptsMean.toFixed(2)} | ${r.toRegistered} | ${r.handler[0]} (${r.handler[1]}) | ${r.activatedToAccepted} | ${r.acceptedToConnack} |`,
    );
  }
}

/** The local stack served by a child process (`--serve`), ready, with the CLI's clients to set it up. */
type ServedStack = {
  child: ChildProcess;
  /** Its MQTT endpoint at 127.0.0.1 (localhost is in the server certificate; no name lookup per attempt). */
  url: string;
  rootCaPem: string;
  services: ReturnType<typeof cliServices>;
  iot: ReturnType<typeof cliIotClient>;
  /** The stack log lines the child recorded since the last ask. */
  askEvents(): Promise<StackEvent[]>;
  /** Disconnects the child (it stops the stack) and removes its folder. */
  stop(): void;
};

/** Forks `--serve` into a fresh temporary folder and waits until the stack is up. */
async function serveStack(tmpPrefix: string, serveArgs: string[]): Promise<ServedStack> {
  const dir = mkdtempSync(join(tmpdir(), tmpPrefix));
  const child = fork(new URL(import.meta.url).pathname, ["--serve", dir, ...serveArgs], {
    execArgv: ["--import", "tsx"],
  });
  const stop = () => {
    if (child.connected) child.disconnect();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.once("message", () => resolve());
      child.once("exit", (code) => reject(new Error(`local stack exited (${code})`)));
    });
    const endpoints = JSON.parse(readFileSync(join(dir, "endpoints.json"), "utf8")) as { mqtt: string };
    const rootCaPem = readFileSync(join(dir, "root-ca.pem"), "utf8");
    const url = `mqtts://127.0.0.1:${new URL(endpoints.mqtt).port}`;
    const target = await resolveTarget({ endpoints: join(dir, "endpoints.json") });
    const askEvents = () =>
      new Promise<StackEvent[]>((resolve) => {
        child.once("message", (message: ChildMessage) => resolve("events" in message ? message.events : []));
        child.send({ events: true });
      });
    return {
      child,
      url,
      rootCaPem,
      services: cliServices(target),
      iot: cliIotClient(target),
      askEvents,
      stop,
    };
  } catch (error) {
    stop();
    throw error;
  }
}

async function measure(): Promise<void> {
  const total = Number(values.devices);
  const levels = values.concurrency.split(",").map(Number);
  const backoffMs = Number(values.backoff);
  const backoffCapMs = Number(values["backoff-cap"]);
  const maxAttempts = Number(values["max-attempts"]);
  const maxSeconds = Number(values["max-seconds"]);
  const otherCas = Number(values["other-cas"]);
  const sane = (n: number, min: number) => Number.isInteger(n) && n >= min;
  if (![total, backoffMs, backoffCapMs, maxAttempts, maxSeconds].every((n) => sane(n, 1))) {
    throw new Error("--devices, --backoff, --backoff-cap, --max-attempts, --max-seconds: whole numbers >= 1");
  }
  if (!sane(otherCas, 0) || otherCas > 100) throw new Error("--other-cas: a whole number from 0 to 100");
  if (levels.length === 0 || !levels.every((n) => sane(n, 1) && n <= total)) {
    throw new Error(`--concurrency: whole numbers from 1 to --devices (${total})`);
  }
  // Each level gets an equal share of the devices, in whole batches of its size.
  const share = Math.floor(total / levels.length);
  const plan = levels.map((concurrency) => ({
    concurrency,
    batches: Math.max(1, Math.floor(share / concurrency)),
  }));
  const needed = plan.reduce((sum, p) => sum + p.concurrency * p.batches, 0);
  if (needed > total) throw new Error(`--devices ${total} is too few for batches of ${levels.join(", ")}`);

  const stack = await serveStack("onramp-bench-jitr-", []);
  const { child, url, rootCaPem, services, iot, askEvents } = stack;
  try {
    // Setup (not timed): CAs, registration, product, serials, device certificates.
    for (let i = 0; i < otherCas; i++) {
      const other = await createSelfSignedCa({ subject: { commonName: `bench other CA ${i}` } });
      await registerCaCertificate(
        { iot: new AwsCaRegistry(iot) },
        { caCertPem: other.certPem, caPrivateKeyPem: other.privateKeyPem },
      );
    }
    const ca = await createSelfSignedCa({ subject: { commonName: "bench JITR device CA" } });
    const { caCertificateId } = await registerCaCertificate(
      { iot: new AwsCaRegistry(iot) },
      { caCertPem: ca.certPem, caPrivateKeyPem: ca.privateKeyPem },
    );
    const productKey = "bench-jitr";
    const serials = Array.from({ length: needed + 1 }, (_, i) => `BENCH-JITR-${String(i).padStart(5, "0")}`);
    await seedProduct(
      services,
      { productKey, name: "JITR benchmark", trustedCaIds: [caCertificateId] },
      serials,
    );
    const issuer = await CertificateIssuer.create(ca);
    const devices: Device[] = await Promise.all(
      serials.map(async (serial) => {
        const keys = await createKeyPair("EC-P256");
        const issued = await issuer.issue({
          subjectPublicKey: keys.publicKeyPem,
          subject: { commonName: serial },
          days: 30,
        });
        return { serial, keyPem: keys.privateKeyPem, chainPem: issued.certificatePem + ca.certPem };
      }),
    );
    services.close();
    iot.destroy();

    const processes = {
      devices: process.pid,
      stack: child.pid!,
      dynalite: childPids(child.pid!)[0] ?? Number.NaN,
    };
    const cpu = () => Object.fromEntries(Object.entries(processes).map(([k, pid]) => [k, processCpuMs(pid)]));

    // Warm-up: one registration before the clock.
    const options = { url, caPem: rootCaPem, backoffMs, backoffCapMs, maxAttempts, deadline: Infinity };
    const warm = await firstConnect(devices[0]!, options);
    await endClient(warm.client);
    if (warm.connackAt === undefined) throw new Error("the warm-up device did not get active");
    await askEvents();

    console.log(
      `JITR benchmark: ${needed} device registrations over MQTT/TLS (EC P-256 device keys, ${otherCas + 1} registered CA${otherCas ? "s" : ""}), retry backoff ${backoffMs} ms doubling to ${backoffCapMs} ms; ${machine()}`,
    );
    const deadline = now() + maxSeconds * 1000;
    const results: LevelResult[] = [];
    let next = 1;
    for (const { concurrency, batches } of plan) {
      const runs: DeviceRun[] = [];
      const events: StackEvent[] = [];
      let wallMs = 0;
      let done = 0;
      const cpuBefore = cpu();
      for (let b = 0; b < batches && now() < deadline; b++) {
        const batch = devices.slice(next, next + concurrency);
        next += concurrency;
        const started = now();
        const batchRuns = await Promise.all(batch.map((d) => firstConnect(d, { ...options, deadline })));
        wallMs += now() - started;
        done++;
        for (const r of batchRuns) await endClient(r.client);
        runs.push(...batchRuns);
        events.push(...(await askEvents()));
      }
      if (done === 0) {
        console.log(`batches of ${concurrency}: skipped, --max-seconds ${maxSeconds} reached`);
        continue;
      }
      const cpuAfter = cpu();
      const active = runs.filter((r) => r.connackAt !== undefined).length;
      const cpuPerRegistration = Object.fromEntries(
        Object.keys(processes).map((k) => [k, (cpuAfter[k]! - cpuBefore[k]!) / Math.max(1, active)]),
      );
      results.push(summarizeLevel(concurrency, done, wallMs, runs, events, cpuPerRegistration));
    }
    printResults(results);
  } finally {
    stack.stop();
  }
}

/** What the stack holds after a roll-out: the registry and AWS IoT checked against each other. */
type RolloutAudit = {
  provisioned: number;
  /** Devices whose record still carries a claim (a flow that never finished). */
  stuckClaims: number;
  /** Provisioned devices whose certificate is ACTIVE and attached to their thing. */
  consistent: number;
  /** Certificates of the bench CA that no device record names, and things without a principal. */
  orphanCertificates: number;
  orphanThings: number;
  /** AWS IoT calls by operation since the stack started (throttled and retried ones included). */
  calls: Record<string, number>;
  queue: {
    sent: number;
    batches: number;
    receives: number;
    deleted: number;
    retried: number;
    deadLettered: number;
  };
  /** The JITR counters of the local metrics (activations, noops, refusals). */
  counters: Record<string, number>;
};

async function audit(stack: LocalStack, serials: string[], caCertificateId: string): Promise<RolloutAudit> {
  await stack.mqtt.rules.settled();
  const state = stack.iot.state;
  let provisioned = 0;
  let stuckClaims = 0;
  let consistent = 0;
  const named = new Set<string>();
  for (const serial of serials) {
    const device = await stack.services.registry.getDevice(serial);
    if (!device) continue;
    if (device.claim) stuckClaims++;
    if (device.certificateId) named.add(device.certificateId);
    if (device.status !== "provisioned" || !device.certificateId) continue;
    provisioned++;
    const certificate = state.certificate(device.certificateId);
    const thing = device.thingName ?? serial;
    if (
      certificate?.status === "ACTIVE" &&
      state.thingPrincipals(thing).includes(certificate.certificateArn)
    ) {
      consistent++;
    }
  }
  const ours = state.listCertificates().filter((c) => c.caCertificateId === caCertificateId);
  const orphanCertificates = ours.filter((c) => !named.has(c.certificateId)).length;
  const orphanThings = state
    .listThings()
    .filter((t) => state.thingPrincipals(t.thingName).length === 0).length;
  const queue = stack.mqtt.rules.queues.get(RULE_TARGETS.jitrRegistration);
  const counters: Record<string, number> = {};
  for (const c of stack.metrics.snapshot().counters) {
    if (c.service !== "jitr-registration") continue;
    const key = [c.name, ...Object.values(c.dimensions ?? {})].join("/");
    counters[key] = (counters[key] ?? 0) + c.value;
  }
  return {
    provisioned,
    stuckClaims,
    consistent,
    orphanCertificates,
    orphanThings,
    calls: stack.iot.faults.allCalls(),
    queue: {
      sent: (queue?.stats.deleted ?? 0) + (queue?.stats.deadLettered ?? 0) + (queue?.depth ?? 0),
      ...(queue?.stats ?? { batches: 0, receives: 0, deleted: 0, retried: 0, deadLettered: 0 }),
    },
    counters,
  };
}

/**
 * `--rollout N`: N JITR devices powering on at once against the local stack run as `npm start --
 * --aws-quotas default` runs it (AWS IoT's default TPS per operation in the emulator, 1 CONNECT/s
 * per client id at the MQTT endpoint, the JITR queue paced at the budget). Each device behaves like
 * firmware: connect; when refused (the first connection registers the certificate and is dropped;
 * later ones while it waits in the queue are refused as PENDING_ACTIVATION), wait 1 s plus a
 * random share of an exponential step (1, 2, 4 … 30 s) and connect again. Reported: all active or
 * not, wall time against N / budget, connects per activated device, the queue's work (receives,
 * retries, dead letters), AWS IoT calls per activated device by operation, and an audit of the
 * registry against AWS IoT (stuck claims, orphan certificates and things).
 */
async function rollout(total: number): Promise<void> {
  if (!Number.isInteger(total) || total < 1 || total > 20_000)
    throw new Error("--rollout: 1 to 20000 devices");
  const maxSeconds = Number(values["max-seconds"]);
  const stack = await serveStack("onramp-bench-jitr-rollout-", ["--serve-quotas", "default"]);
  const { child, url, rootCaPem, services, iot, askEvents } = stack;
  try {
    const ca = await createSelfSignedCa({ subject: { commonName: "bench JITR roll-out CA" } });
    const { caCertificateId } = await registerCaCertificate(
      { iot: new AwsCaRegistry(iot) },
      { caCertPem: ca.certPem, caPrivateKeyPem: ca.privateKeyPem },
    );
    const serials = Array.from({ length: total }, (_, i) => `ROLLOUT-${String(i).padStart(5, "0")}`);
    await seedProduct(
      services,
      { productKey: "bench-rollout", name: "JITR roll-out", trustedCaIds: [caCertificateId] },
      serials,
    );
    const issuer = await CertificateIssuer.create(ca);
    const devices: Device[] = [];
    for (const serial of serials) {
      const keys = await createKeyPair("EC-P256");
      const issued = await issuer.issue({
        subjectPublicKey: keys.publicKeyPem,
        subject: { commonName: serial },
        days: 30,
      });
      devices.push({ serial, keyPem: keys.privateKeyPem, chainPem: issued.certificatePem + ca.certPem });
    }
    services.close();
    iot.destroy();

    const budget = jitrRegistrationsPerSecond();
    console.log(
      `JITR roll-out: ${total} devices powering on at once; local stack with --aws-quotas default (budget ${budget} registrations/s, ${jitrConsumers(budget)} consumers); firmware backoff 1 s + jitter × 2^n (cap 30 s); ${machine()}`,
    );
    const started = now();
    const deadline = started + maxSeconds * 1000;
    const runs = await Promise.all(devices.map((device) => powerOn(device, url, rootCaPem, deadline)));
    const wallSeconds = (now() - started) / 1000;
    for (const run of runs) await endClient(run.client);

    const events = await askEvents();
    const activations = events
      .filter((e) => e.message.startsWith("jitr: certificate activated"))
      .map((e) => e.at);
    const lastActivation = activations.length ? (Math.max(...activations) - started) / 1000 : Number.NaN;
    const result = await new Promise<RolloutAudit>((resolve) => {
      child.on("message", (message: ChildMessage) => {
        if ("audit" in message) resolve(message.audit);
      });
      child.send({ audit: { serials, caCertificateId } });
    });
    const active = runs.filter((r) => r.connackAt !== undefined);
    const connects = runs.reduce((sum, r) => sum + r.attempts, 0);
    const ideal = total / budget;
    const perActive = (n: number) => (n / Math.max(1, active.length)).toFixed(2);
    console.log(`\nactive: ${active.length} / ${total} (gave up: ${total - active.length})`);
    console.log(
      `wall time: ${wallSeconds.toFixed(1)} s; ${total} / budget = ${ideal.toFixed(1)} s; ratio ${(wallSeconds / ideal).toFixed(2)}`,
    );
    console.log(
      `registrations: ${activations.length} in ${lastActivation.toFixed(1)} s (last activation after the start; ${(activations.length / lastActivation).toFixed(1)}/s); the rest of the wall time is the devices' backoff before their next connect`,
    );
    console.log(
      `connects per activated device: ${perActive(connects)} (max ${Math.max(...runs.map((r) => r.attempts))})`,
    );
    console.log(
      `registry: provisioned ${result.provisioned}, consistent with AWS IoT ${result.consistent}, stuck claims ${result.stuckClaims}; orphans: certificates ${result.orphanCertificates}, things ${result.orphanThings}`,
    );
    console.log(`queue: ${JSON.stringify(result.queue)}`);
    console.log(`JITR counters: ${JSON.stringify(result.counters)}`);
    console.log(
      `AWS IoT calls per activated device: ${Object.entries(result.calls)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([op, n]) => `${op} ${perActive(n)}`)
        .join(", ")}`,
    );
  } finally {
    stack.stop();
  }
}

/** Firmware's first connection: connect; when refused, wait 1 s + jitter × 2^n (cap 30 s), again. */
async function powerOn(device: Device, url: string, caPem: string, deadline: number): Promise<DeviceRun> {
  const run: DeviceRun = { serial: device.serial, startedAt: now(), attempts: 0 };
  let step = 1000;
  while (now() < deadline) {
    run.attempts++;
    const result = await attempt(device, url, caPem);
    if (result.connected) {
      run.connackAt = now();
      run.client = result.client;
      return run;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000 + Math.random() * step));
    step = Math.min(step * 2, 30_000);
  }
  return run;
}
