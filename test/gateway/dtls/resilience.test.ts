// Loss, reordering and duplication through a lossy proxy; fuzzing with random and mutated
// datagrams; 1,000 concurrent sessions on loopback. Bounded in time; no timing assertions.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { test } from "node:test";
import { TLS_PSK_WITH_AES_128_CBC_SHA256, TLS_PSK_WITH_AES_128_CCM_8 } from "#gateway/dtls/cipher-suites.ts";
import { startLossyProxy } from "./support/lossy-proxy.ts";
import { PskTestClient } from "./support/psk-test-client.ts";
import { echo, KEY, once, sleep, startServer } from "./support/servers.ts";

const identity = Buffer.from("device-1");

test("handshakes complete through 25% loss, 20% reordering and 10% duplication", async () => {
  const { server, port } = await startServer({
    timing: { retransmitInitialMs: 50, retransmitMaxMs: 400, maxRetransmissions: 12 },
  });
  echo(server);
  for (let seed = 1; seed <= 12; seed++) {
    const proxy = await startLossyProxy(port, { loss: 0.25, reorder: 0.2, duplicate: 0.1, seed });
    const suite = seed % 2 ? TLS_PSK_WITH_AES_128_CCM_8 : TLS_PSK_WITH_AES_128_CBC_SHA256;
    const client = new PskTestClient({
      port: proxy.port,
      identity,
      psk: KEY,
      suite,
      retransmitMs: 50,
      fragmentSize: 24,
    });
    await client.connect();
    // Application data is not retransmitted by DTLS: ask until an answer gets through.
    const reply = once<Buffer>((r) => client.on("data", r), 8000);
    const asking = setInterval(() => client.send(Buffer.from(`hello ${seed}`)), 60);
    client.send(Buffer.from(`hello ${seed}`));
    assert.equal((await reply).toString(), `echo:hello ${seed}`);
    clearInterval(asking);
    client.close();
    await proxy.close();
  }
  assert.equal(server.stats().handshakes, 0);
  await server.close();
});

test("fuzzing: random and mutated datagrams never crash the server and leave no state", async () => {
  const { server, port } = await startServer();
  const errors: Error[] = [];
  server.removeAllListeners("error");
  server.on("error", (e) => errors.push(e));
  // Real handshake datagrams to mutate.
  const seedClient = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  await seedClient.connect();
  seedClient.send(Buffer.from("data"));
  const corpus = [...seedClient.sent];
  seedClient.close();

  const fuzzer = createSocket("udp4");
  await new Promise<void>((r) => fuzzer.bind(0, "127.0.0.1", () => r()));
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 100; i++) {
      let datagram: Buffer;
      const pick = corpus[(round * 100 + i) % corpus.length]!;
      switch (i % 4) {
        case 0:
          datagram = randomBytes(1 + Math.floor(Math.random() * 300));
          break;
        case 1: {
          datagram = Buffer.from(pick);
          for (let k = 0; k < 3; k++)
            datagram[Math.floor(Math.random() * datagram.length)] = Math.floor(Math.random() * 256);
          break;
        }
        case 2:
          datagram = pick.subarray(0, Math.floor(Math.random() * pick.length));
          break;
        default: {
          // Valid framing, random epoch / length / contents.
          datagram = Buffer.from(pick);
          datagram.writeUInt16BE(Math.floor(Math.random() * 4), 3);
          datagram.writeUInt16BE(Math.min(datagram.length - 13, Math.floor(Math.random() * 400)), 11);
        }
      }
      fuzzer.send(datagram, port, "127.0.0.1");
      // The same datagram straight into the handler, from many sources.
      server.handleDatagram(datagram, { address: `10.0.${round}.${i}`, port: 1000 + i });
    }
    await sleep(5);
  }
  await sleep(100);
  global.gc?.();
  const grown = process.memoryUsage().heapUsed - before;
  assert.deepEqual(errors, []);
  assert.equal(server.stats().handshakes, 0, "no handshake state without a valid cookie");
  assert.ok(grown < 32 * 1024 * 1024, `heap grew by ${grown} bytes`);
  // Still serving.
  const client = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CBC_SHA256 });
  await client.connect();
  client.close();
  fuzzer.close();
  await server.close();
});

test("1,000 concurrent sessions on loopback, then the bound refuses the next one", async () => {
  const { server, port } = await startServer({
    limits: { maxSessions: 1000, maxHandshakes: 1000, maxHandshakesPerSource: 1000 },
    timing: { retransmitInitialMs: 1000 },
  });
  echo(server);
  const clients: PskTestClient[] = [];
  for (let batch = 0; batch < 10; batch++) {
    const wave = Array.from(
      { length: 100 },
      (_, i) =>
        new PskTestClient({
          port,
          identity,
          psk: KEY,
          suite: i % 2 ? TLS_PSK_WITH_AES_128_CCM_8 : TLS_PSK_WITH_AES_128_CBC_SHA256,
          retransmitMs: 1000,
        }),
    );
    clients.push(...wave);
    await Promise.all(wave.map((c) => c.connect()));
  }
  assert.equal(server.stats().sessions, 1000);
  // 1,000 datagrams at once can overflow the loopback receive buffer; DTLS does not retransmit
  // application data, so each client repeats until its answer arrives.
  const replies = await Promise.all(
    clients.map(async (c, i) => {
      const got = once<Buffer>((r) => c.once("data", r), 20_000);
      c.send(Buffer.from(String(i)));
      const again = setInterval(() => c.send(Buffer.from(String(i))), 500);
      try {
        return await got;
      } finally {
        clearInterval(again);
      }
    }),
  );
  assert.deepEqual(
    replies.map((r) => r.toString()),
    clients.map((_, i) => `echo:${i}`),
  );
  const extra = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  void extra.connect().catch(() => {});
  await sleep(300);
  assert.equal(extra.connected, false);
  assert.equal(server.stats().sessions, 1000);
  extra.close();
  for (const c of clients) c.close();
  await server.close();
});
