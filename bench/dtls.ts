/**
 * gateway/dtls throughput on this machine: full PSK handshakes per second (cookie exchange
 * included), application records per second (client -> server, then echoed), and server memory per
 * established session. Clients run in the same process (the scripted test client), so the figures
 * are for server and clients together sharing the CPU.
 *
 *   npm run bench:dtls [-- --handshakes 600 --records 20000 --sessions 1000]
 */
import { parseArgs } from "node:util";
import {
  type CipherSuite,
  TLS_PSK_WITH_AES_128_CBC_SHA256,
  TLS_PSK_WITH_AES_128_CCM_8,
} from "#gateway/dtls/cipher-suites.ts";
import { DtlsServer } from "#gateway/dtls/index.ts";
import { PskTestClient } from "#test/gateway/dtls/support/psk-test-client.ts";

const { values } = parseArgs({
  options: {
    handshakes: { type: "string", default: "600" },
    records: { type: "string", default: "20000" },
    sessions: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "20" },
  },
});
const KEY = Buffer.from("00112233445566778899aabbccddeeff", "hex");
const identity = Buffer.from("device-1");
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

const server = new DtlsServer({
  psk: async () => KEY,
  limits: { maxSessions: 100_000, maxHandshakes: 10_000, maxHandshakesPerSource: 10_000 },
  timing: { retransmitInitialMs: 2000 },
});
server.on("session", (s) => s.on("data", (d) => s.send(d)));
const { port } = await server.listen(0, "127.0.0.1");

async function handshakes(suite: CipherSuite, total: number, concurrency: number): Promise<number> {
  let started = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (started < total) {
      started++;
      const c = new PskTestClient({ port, identity, psk: KEY, suite, retransmitMs: 2000 });
      await c.connect();
      c.sendAlert(1, 0);
      c.close();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return total / ((performance.now() - t0) / 1000);
}

/** Echo round trips with a window of 32 in flight: records/s counts both directions. */
async function records(suite: CipherSuite, total: number): Promise<number> {
  const c = new PskTestClient({ port, identity, psk: KEY, suite });
  await c.connect();
  const payload = Buffer.alloc(64, 1);
  let answered = 0;
  let sent = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 20_000);
    c.on("data", () => {
      answered++;
      if (answered >= total) {
        clearTimeout(timer);
        resolve();
      } else if (sent < total) {
        sent++;
        c.send(payload);
      }
    });
    // Re-prime the window if loopback drops a datagram (DTLS does not retransmit data).
    const refill = setInterval(() => {
      if (answered >= total) clearInterval(refill);
      else if (sent - answered < 32) for (let i = sent - answered; i < 32; i++, sent++) c.send(payload);
    }, 50);
    for (; sent < 32; sent++) c.send(payload);
  });
  const seconds = (performance.now() - t0) / 1000;
  c.close();
  return (2 * answered) / seconds;
}

async function memoryPerSession(n: number): Promise<{ heap: number; rss: number }> {
  gc();
  const before = process.memoryUsage();
  const baseline = server.stats().sessions;
  for (let done = 0; done < n; done += 100) {
    const wave = Array.from(
      { length: 100 },
      (_, i) =>
        new PskTestClient({
          port,
          identity,
          psk: KEY,
          suite: i % 2 ? TLS_PSK_WITH_AES_128_CCM_8 : TLS_PSK_WITH_AES_128_CBC_SHA256,
          retransmitMs: 2000,
        }),
    );
    await Promise.all(wave.map((c) => c.connect()));
    for (const c of wave) c.close(); // the server keeps its sessions until their idle timeout
  }
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const after = process.memoryUsage();
  const count = server.stats().sessions - baseline;
  return { heap: (after.heapUsed - before.heapUsed) / count, rss: (after.rss - before.rss) / count };
}

const hsCount = Number(values.handshakes);
const concurrency = Number(values.concurrency);
console.log(`DTLS 1.2 PSK bench on 127.0.0.1, node ${process.version}`);
for (const suite of [TLS_PSK_WITH_AES_128_CCM_8, TLS_PSK_WITH_AES_128_CBC_SHA256]) {
  await handshakes(suite, 50, concurrency); // warm-up
  const hs = await handshakes(suite, hsCount, concurrency);
  const rec = await records(suite, Number(values.records));
  console.log(
    `${suite.name}: ${hs.toFixed(0)} full handshakes/s (${concurrency} in flight), ${rec.toFixed(0)} records/s (64-byte echo round trips, one session, both directions counted)`,
  );
}
const mem = await memoryPerSession(Number(values.sessions));
console.log(
  `memory per established session: ${(mem.heap / 1024).toFixed(1)} KiB heap, ${(mem.rss / 1024).toFixed(1)} KiB RSS (${values.sessions} sessions)`,
);
await server.close();
process.exit(0);
