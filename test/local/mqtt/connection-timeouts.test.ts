import assert from "node:assert/strict";
import { connect as netConnect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { silentLogger } from "#core/logger.ts";
import { createIotEmulator, type IotEmulator } from "#local/iot/index.ts";
import { type MqttEndpoint, startMqttEndpoint } from "#local/mqtt/mqtt-endpoint.ts";
import { RuleEngine } from "#local/mqtt/rule-engine.ts";

/** A harness guard only: a connection the endpoint never closes fails the test instead of hanging. */
const GUARD = { timeout: 15_000 };

/** Resolves when the server closes the socket (the client never ends it itself). */
const closedByServer = (socket: Socket) =>
  new Promise<void>((resolve) => {
    socket.on("error", () => {}); // ECONNRESET is a close too
    socket.once("close", () => resolve());
  });

/**
 * Connections that never get to MQTT: a TCP socket that sends nothing, a TLS handshake that
 * stalls half way, a TLS session that never sends CONNECT. The endpoint closes each of them
 * (short timeouts here; the defaults are 10 s for the handshake, 30 s for CONNECT).
 */
describe("MQTT endpoint: connections that stall before CONNECT are closed", () => {
  let iot: IotEmulator;
  let endpoint: MqttEndpoint;
  const open: Socket[] = [];

  before(async () => {
    iot = await createIotEmulator();
    endpoint = await startMqttEndpoint({
      iot,
      rules: new RuleEngine({ rules: [], targets: new Map(), logger: silentLogger }),
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger,
      region: "us-east-1",
      accountId: "000000000000",
      timeouts: { handshakeMs: 200, connectMs: 200 },
    });
  });
  after(async () => {
    for (const socket of open) socket.destroy();
    await endpoint?.close();
    await iot?.close();
  });

  const rawSocket = () => {
    const socket = netConnect(endpoint.port, "127.0.0.1");
    open.push(socket);
    return socket;
  };

  it("closes a plain TCP connection that sends nothing", GUARD, async () => {
    const socket = rawSocket();
    const closed = closedByServer(socket);
    await new Promise((resolve) => socket.once("connect", resolve));
    await closed;
    assert.equal(socket.destroyed, true);
  });

  it("closes a TLS handshake that stops after a partial ClientHello", GUARD, async () => {
    const socket = rawSocket();
    const closed = closedByServer(socket);
    await new Promise((resolve) => socket.once("connect", resolve));
    // A TLS record header announcing a 512-byte handshake message, and the first bytes of it.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    await closed;
    assert.equal(socket.destroyed, true);
  });

  it(
    "closes a TLS handshake fed one byte at a time (the deadline is not reset by traffic)",
    GUARD,
    async () => {
      const socket = rawSocket();
      const closed = closedByServer(socket);
      await new Promise((resolve) => socket.once("connect", resolve));
      // A record of the largest size (16 KB), so that it never completes and fails to parse: the
      // header, then a ClientHello's start, then zeros (its "random" field and beyond).
      const start = [0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc, 0x03, 0x03];
      let sent = 0;
      const trickle = setInterval(() => {
        if (!socket.destroyed) socket.write(Buffer.from([start[sent] ?? 0]));
        sent++;
      }, 20);
      try {
        await closed;
      } finally {
        clearInterval(trickle);
      }
      assert.equal(socket.destroyed, true);
    },
  );

  it("closes a TLS session that never sends CONNECT", GUARD, async () => {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port: endpoint.port,
      servername: "localhost",
      ca: iot.rootCaPem,
    });
    open.push(socket);
    const closed = closedByServer(socket);
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    assert.equal(socket.authorized, true, "the handshake itself succeeds");
    await closed;
  });
});
