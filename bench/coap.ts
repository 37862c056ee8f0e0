/**
 * The CoAP gateway's cost on this machine, next to libcoap's `coap-server-openssl` (Debian
 * libcoap3-bin) in the same run: full DTLS 1.2 PSK handshakes (cookie exchange included) and CoAP
 * confirmable requests, per second of the server's own CPU time (read from /proc, so "per core"
 * whatever the clients cost), and the server's resident memory per established session. Each
 * server runs in its own process; the clients (the scripted PSK test client + gateway/coap's
 * client) run in this one. The gateway's registry, secrets and publisher are in-memory stubs: the
 * figures are the gateway's (DTLS, CoAP, EnOS routing), not DynamoDB's or AWS IoT's.
 *
 *   npm run bench:coap [-- --handshakes 400 --requests 10000 --sessions 1000]
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { silentLogger } from "#core/logger.ts";
import type { Device, Product } from "#core/registry/model.ts";
import type { Registry, SecretStore } from "#core/registry/ports.ts";
import { deriveDeviceSecret } from "#credentials/derived-secret.ts";
import { enosPskKey } from "#credentials/enos-psk.ts";
import { CoapClient } from "#gateway/coap/index.ts";
import { type CipherSuite, TLS_PSK_WITH_AES_128_CCM_8 } from "#gateway/dtls/cipher-suites.ts";
import { EnosCoapGateway } from "#gateway/enos/index.ts";
import { PskTestClient } from "#test/gateway/dtls/support/psk-test-client.ts";

const { values } = parseArgs({
  options: {
    serve: { type: "boolean", default: false },
    handshakes: { type: "string", default: "400" },
    requests: { type: "string", default: "10000" },
    sessions: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "20" },
  },
});

const PRODUCT_SECRET = "YmVuY2gtcHJvZHVjdC1zZWNyZXQtMzItYnl0ZXMhIQ==";
const IDENTITY = "benchPk,dev-1,2,3600";
const LIBCOAP_KEY = "0123456789abcdef"; // coap-server-openssl -k takes text

type Server = {
  name: string;
  pid: number;
  port: number;
  identity: Buffer;
  key: Buffer;
  path: string;
  method: "GET" | "POST";
  /** The Node gateway: V8 heap after a GC (RSS moves with the GC); libcoap (C): RSS. */
  memory: { kind: string; read(): Promise<number> };
  stop(): void;
};

/** utime + stime of a process, seconds (/proc/PID/stat fields 14 and 15, clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) * 1024;
}

async function startGateway(): Promise<Server> {
  const child = spawn(
    process.execPath,
    ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url), "--serve"],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout });
  let heapWaiter: ((n: number) => void) | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    lines.on("line", (line) => {
      const m = line.match(/^PORT (\d+)$/);
      if (m) resolve(Number(m[1]));
      const h = line.match(/^HEAP (\d+)$/);
      if (h) heapWaiter?.(Number(h[1]));
    });
    child.once("exit", () => reject(new Error("the gateway process exited")));
  });
  const heap = () =>
    new Promise<number>((resolve) => {
      heapWaiter = resolve;
      child.stdin.write("heap\n");
    });
  return {
    name: "gateway/enos (EnOS POST → publisher stub)",
    pid: child.pid ?? 0,
    port,
    identity: Buffer.from(IDENTITY),
    key: Buffer.from(enosPskKey(deriveDeviceSecret(PRODUCT_SECRET, "dev-1"))),
    path: "/topic/sys/benchPk/dev-1/thing/measurepoint/post",
    method: "POST",
    memory: { kind: "heap", read: heap },
    stop: () => child.kill("SIGKILL"),
  };
}

async function startLibcoap(): Promise<Server | undefined> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(
    "coap-server-openssl",
    ["-A", "127.0.0.1", "-p", String(port), "-k", LIBCOAP_KEY, "-h", "", "-v", "0"],
    { stdio: "ignore" },
  );
  const failed = await new Promise<boolean>((resolve) => {
    child.once("error", () => resolve(true));
    setTimeout(() => resolve(child.exitCode !== null), 500);
  });
  if (failed) return undefined;
  return {
    name: "libcoap coap-server-openssl 4.3 (GET /, its banner)",
    pid: child.pid ?? 0,
    port: port + 1, // libcoap listens for coaps on -p + 1
    identity: Buffer.from("bench"),
    key: Buffer.from(LIBCOAP_KEY),
    path: "/",
    method: "GET",
    memory: { kind: "RSS", read: async () => rssBytes(child.pid ?? 0) },
    stop: () => child.kill("SIGKILL"),
  };
}

const client = (s: Server, suite: CipherSuite) =>
  new PskTestClient({ port: s.port, identity: s.identity, psk: s.key, suite, retransmitMs: 2000 });

async function handshakes(s: Server, total: number, concurrency: number) {
  let started = 0;
  let failed = 0;
  const cpu0 = cpuSeconds(s.pid);
  const t0 = performance.now();
  const worker = async () => {
    while (started < total) {
      started++;
      const c = client(s, TLS_PSK_WITH_AES_128_CCM_8);
      let timer: NodeJS.Timeout | undefined;
      const ok = await Promise.race([
        c.connect().then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), 5000);
        }),
      ]);
      clearTimeout(timer);
      if (ok)
        c.sendAlert(1, 0); // close_notify: the server drops the session
      else failed++;
      c.close();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wall = (performance.now() - t0) / 1000;
  const done = total - failed;
  return {
    perWallSecond: done / wall,
    perCpuSecond: done / Math.max(cpuSeconds(s.pid) - cpu0, 0.01),
    failed,
  };
}

/** Confirmable requests with 32 outstanding, piggybacked responses, one session. */
async function requests(s: Server, total: number) {
  const c = client(s, TLS_PSK_WITH_AES_128_CCM_8);
  await c.connect();
  const coap = new CoapClient((d) => c.send(d), { ackTimeoutMs: 2000 });
  c.on("data", (d) => coap.receive(d));
  let sent = 0;
  let answered = 0;
  const cpu0 = cpuSeconds(s.pid);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const one = (): void => {
      if (sent >= total) return;
      sent++;
      coap
        .request({
          method: s.method,
          path: s.path,
          payload: s.method === "POST" ? '{"params":{"v":1}}' : undefined,
        })
        .then((r) => {
          if (!r.code.startsWith("2.")) throw new Error(`${s.name} answered ${r.code}`);
          answered++;
          if (answered === total) resolve();
          else one();
        }, reject);
    };
    for (let i = 0; i < 32; i++) one();
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(s.pid) - cpu0;
  c.sendAlert(1, 0);
  c.close();
  return { perWallSecond: total / wall, perCpuSecond: total / Math.max(cpu, 0.01) };
}

async function memoryPerSession(s: Server, n: number): Promise<{ perSession: number; established: number }> {
  await new Promise((r) => setTimeout(r, 300));
  const before = await s.memory.read();
  const open: PskTestClient[] = [];
  let established = 0;
  for (let done = 0; done < n; done += 100) {
    const wave = Array.from({ length: 100 }, () => client(s, TLS_PSK_WITH_AES_128_CCM_8));
    const results = await Promise.all(
      wave.map((c) =>
        Promise.race([
          c.connect().then(() => true),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref()),
        ]),
      ),
    );
    established += results.filter(Boolean).length;
    open.push(...wave);
  }
  await new Promise((r) => setTimeout(r, 500));
  const after = await s.memory.read();
  for (const c of open) c.close();
  return { perSession: (after - before) / Math.max(established, 1), established };
}

/** A phase that does not finish within 60 s is reported as such (the bench never hangs). */
function phase<T>(work: Promise<T>): Promise<T | string> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("did not finish within 60 s"), 60_000);
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}

async function main(): Promise<void> {
  const hsCount = Number(values.handshakes);
  const reqCount = Number(values.requests);
  const concurrency = Number(values.concurrency);
  console.log(
    `CoAP over DTLS 1.2 PSK (TLS_PSK_WITH_AES_128_CCM_8) on 127.0.0.1, node ${process.version}; per CPU second = per second of the server process's own CPU time`,
  );
  const servers = [await startGateway(), await startLibcoap()].filter((s): s is Server => s !== undefined);
  if (servers.length === 1) console.log("(coap-server-openssl not found: apt-get install libcoap3-bin)");
  try {
    for (const s of servers) {
      console.log(`${s.name}:`);
      const rate = (r: { perCpuSecond: number; perWallSecond: number }) =>
        `${r.perCpuSecond.toFixed(0)}/CPU s (${r.perWallSecond.toFixed(0)}/s wall`;
      await phase(handshakes(s, 50, concurrency)); // warm-up
      const hs = await phase(handshakes(s, hsCount, concurrency));
      console.log(
        `  handshakes ${typeof hs === "string" ? hs : `${rate(hs)}, ${concurrency} in flight${hs.failed ? `; ${hs.failed} of ${hsCount} did not complete within 5 s` : ""})`}`,
      );
      await phase(requests(s, 500));
      const rq = await phase(requests(s, reqCount));
      console.log(
        `  requests   ${typeof rq === "string" ? rq : `${rate(rq)}, 32 outstanding CON, one session)`}`,
      );
      const mem = await phase(memoryPerSession(s, Number(values.sessions)));
      console.log(
        `  memory     ${typeof mem === "string" ? mem : `${(mem.perSession / 1024).toFixed(1)} KiB ${s.memory.kind} per established session (${mem.established} of ${values.sessions} established)`}`,
      );
    }
  } finally {
    for (const s of servers) s.stop();
  }
  process.exit(0);
}

async function serve(): Promise<void> {
  // The gateway in its own process, with in-memory registry, secrets and publisher.
  const product = {
    productKey: "benchPk",
    name: "Bench",
    authMode: "device-secret",
    mqttAuth: { scheme: "enos", dynamicActivation: false },
  } as Product;
  const device = {
    serialNumber: "dev-1",
    productKey: "benchPk",
    status: "provisioned",
    version: 1,
  } as Device;
  const registry = {
    getProduct: async (key: string) => (key === "benchPk" ? product : undefined),
    getDevice: async (serial: string) => (serial === "dev-1" ? device : undefined),
  } as unknown as Registry;
  const secrets = { getProductSecret: async () => PRODUCT_SECRET } as unknown as SecretStore;
  const gateway = new EnosCoapGateway(
    {
      registry,
      secrets,
      iot: { createThing: async () => undefined, describeThing: async () => undefined },
      publisher: { publish: async () => undefined },
      logger: silentLogger,
    },
    {
      dtls: {
        limits: { maxSessions: 100_000, maxHandshakes: 10_000, maxHandshakesPerSource: 10_000 },
        timing: { retransmitInitialMs: 2000 },
      },
    },
  );
  const { port } = await gateway.listen(0, "127.0.0.1");
  console.log(`PORT ${port}`);
  // "heap" on stdin: collect garbage, answer the heap in use (memory per session is measured so).
  createInterface({ input: process.stdin }).on("line", () => {
    (globalThis as { gc?: () => void }).gc?.();
    console.log(`HEAP ${process.memoryUsage().heapUsed}`);
  });
}

if (values.serve) await serve();
else await main();
