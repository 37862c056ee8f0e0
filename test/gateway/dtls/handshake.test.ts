// The server's handshake state machine driven by a scripted client: suites, EMS, fragmentation in
// both directions, async PSK lookups, alerts, close_notify, idle timeout, replayed records.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { test } from "node:test";
import { TLS_PSK_WITH_AES_128_CBC_SHA256, TLS_PSK_WITH_AES_128_CCM_8 } from "#gateway/dtls/cipher-suites.ts";
import { AlertDescription } from "#gateway/dtls/constants.ts";
import { PskTestClient } from "./support/psk-test-client.ts";
import { echo, KEY, once, sleep, startServer } from "./support/servers.ts";

const identity = Buffer.from("device-1");

for (const suite of [TLS_PSK_WITH_AES_128_CCM_8, TLS_PSK_WITH_AES_128_CBC_SHA256]) {
  for (const ems of [false, true]) {
    test(`${suite.name}${ems ? " + extended master secret" : ""}: fragmented both ways, data echoed`, async () => {
      const { server, port } = await startServer({ mtu: 60 });
      echo(server);
      const client = new PskTestClient({
        port,
        identity,
        psk: KEY,
        suite,
        fragmentSize: 20,
        extendedMasterSecret: ems,
      });
      await client.connect();
      const reply = once<Buffer>((r) => client.on("data", r));
      client.send(Buffer.from("ping"));
      assert.equal((await reply).toString(), "echo:ping");
      assert.deepEqual(
        { ...server.stats(), droppedDatagrams: 0 },
        {
          handshakes: 0,
          sessions: 1,
          helloVerifyRequests: 1,
          refusedHandshakes: 0,
          droppedDatagrams: 0,
        },
      );
      client.close();
      await server.close();
    });
  }
}

test("the first ClientHello gets a HelloVerifyRequest no larger than itself and no state", async () => {
  const { server, port } = await startServer();
  const client = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  const hvr = once<number>((r) => client.socket.once("message", (m) => r(m.length)));
  void client.connect().catch(() => {});
  assert.ok((await hvr) <= (client.sent[0]?.length ?? 0));
  client.close();
  assert.equal(server.stats().handshakes, 0);
  await server.close();
});

test("a slow PSK lookup does not hold up other peers", async () => {
  let release: (() => void) | undefined;
  const { server, port } = await startServer({
    psk: (id) =>
      id.toString() === "slow"
        ? new Promise((resolve) => {
            release = () => resolve(KEY);
          })
        : Promise.resolve(KEY),
  });
  const slow = new PskTestClient({
    port,
    identity: Buffer.from("slow"),
    psk: KEY,
    suite: TLS_PSK_WITH_AES_128_CCM_8,
  });
  const slowDone = slow.connect();
  while (!release) await sleep(10);
  const fast = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  await fast.connect();
  assert.equal(slow.connected, false);
  release();
  await slowDone;
  assert.equal(server.stats().sessions, 2);
  slow.close();
  fast.close();
  await server.close();
});

test("a wrong key gets a fatal alert and frees the handshake", async () => {
  const { server, port } = await startServer();
  const failed = once<string>((r) => server.on("handshakeFailed", (_remote, reason) => r(reason)));
  const client = new PskTestClient({
    port,
    identity,
    psk: Buffer.alloc(16, 1),
    suite: TLS_PSK_WITH_AES_128_CBC_SHA256,
  });
  const alert = once<number>((r) => client.on("alert", (_level, description) => r(description)));
  await assert.rejects(client.connect(), /alert/);
  assert.equal(await alert, AlertDescription.badRecordMac);
  assert.match(await failed, /does not authenticate/);
  assert.equal(server.stats().handshakes, 0);
  client.close();
  await server.close();
});

test("a replayed application record is delivered once (anti-replay window)", async () => {
  const { server, port } = await startServer();
  const received: string[] = [];
  server.on("session", (s) => s.on("data", (d) => received.push(d.toString())));
  const client = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  await client.connect();
  client.send(Buffer.from("once"));
  const record = client.sent.at(-1)!;
  for (let i = 0; i < 5; i++) client.sendRaw(record);
  client.send(Buffer.from("twice"));
  await sleep(200);
  assert.deepEqual(received, ["once", "twice"]);
  client.close();
  await server.close();
});

test("cookie replay: a captured ClientHello from another port gets only a new cookie; from the same port it does not disturb the session", async () => {
  const { server, port } = await startServer();
  echo(server);
  const client = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  await client.connect();
  const helloWithCookie = client.sent[1]!;
  const attacker = createSocket("udp4");
  const answer = once<Buffer>((r) => attacker.once("message", r));
  attacker.send(helloWithCookie, port, "127.0.0.1");
  const reply = await answer;
  assert.equal(reply[13], 3, "HelloVerifyRequest");
  assert.equal(server.stats().handshakes, 0);
  client.sendRaw(helloWithCookie);
  await sleep(50);
  const echoed = once<Buffer>((r) => client.on("data", r));
  client.send(Buffer.from("still here"));
  assert.equal((await echoed).toString(), "echo:still here");
  assert.deepEqual([server.stats().sessions, server.stats().handshakes], [1, 0]);
  attacker.close();
  client.close();
  await server.close();
});

test("handshakes per source and sessions are bounded", async () => {
  const { server, port } = await startServer({
    psk: () => new Promise(() => {}), // never answers: handshakes stay open
    limits: { maxHandshakesPerSource: 2 },
    timing: { handshakeTimeoutMs: 60_000 },
  });
  const clients = [1, 2, 3].map(
    () => new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 }),
  );
  for (const c of clients) void c.connect().catch(() => {});
  await sleep(300);
  assert.equal(server.stats().handshakes, 2);
  assert.ok(server.stats().refusedHandshakes >= 1);
  for (const c of clients) c.close();
  await server.close();

  const small = await startServer({ limits: { maxSessions: 1 } });
  const a = new PskTestClient({ port: small.port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  await a.connect();
  const b = new PskTestClient({ port: small.port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  void b.connect().catch(() => {});
  await sleep(300);
  assert.equal(b.connected, false);
  assert.equal(small.server.stats().sessions, 1);
  a.close();
  b.close();
  await small.server.close();
});

test("close_notify from the peer ends the session; server.close() sends close_notify", async () => {
  const { server, port } = await startServer();
  const sessions = echo(server);
  const client = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  await client.connect();
  await once<void>((r) => (sessions.length > 0 ? r() : server.once("session", () => r())));
  const closed = once<string>((r) => sessions[0]!.on("close", r));
  client.sendAlert(1, AlertDescription.closeNotify);
  assert.equal(await closed, "peer sent close_notify");
  assert.equal(server.stats().sessions, 0);

  const second = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  await second.connect();
  const notified = once<number>((r) => second.on("alert", (_l, d) => r(d)));
  await server.close();
  assert.equal(await notified, AlertDescription.closeNotify);
  client.close();
  second.close();
});

test("an idle session times out", async () => {
  const { server, port } = await startServer({ timing: { sessionIdleMs: 150 } });
  const reason = once<string>((r) => server.on("session", (s) => s.on("close", r)));
  const client = new PskTestClient({ port, identity, psk: KEY, suite: TLS_PSK_WITH_AES_128_CCM_8 });
  await client.connect();
  assert.equal(await reason, "idle timeout");
  assert.equal(server.stats().sessions, 0);
  client.close();
  await server.close();
});
