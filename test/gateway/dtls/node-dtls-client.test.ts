// node-dtls-client (an independent TypeScript DTLS PSK client) as the peer.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { dtls } from "node-dtls-client";
import { ASCII_KEY, echo, once, startServer } from "./support/servers.ts";

const { server, port } = await startServer();
echo(server);
after(() => server.close());

function connect(
  suite: "TLS_PSK_WITH_AES_128_CCM_8" | "TLS_PSK_WITH_AES_128_CBC_SHA256",
  identity: string,
  key: string,
) {
  return dtls.createSocket({
    type: "udp4",
    address: "127.0.0.1",
    port,
    psk: { [identity]: key },
    ciphers: [suite],
    timeout: 3000,
  });
}

/** The client closes its socket itself after a failed handshake; closing again throws "Not running". */
function closeQuietly(socket: dtls.Socket): void {
  try {
    socket.close();
  } catch {}
}

for (const suite of ["TLS_PSK_WITH_AES_128_CCM_8", "TLS_PSK_WITH_AES_128_CBC_SHA256"] as const) {
  test(`node-dtls-client: ${suite} handshake and application data both ways`, async () => {
    const socket = connect(suite, "ascii-device", ASCII_KEY);
    await once<void>((r) => socket.on("connected", () => r()));
    const reply = once<Buffer>((r) => socket.on("message", (m: Buffer) => r(m)));
    socket.send(Buffer.from("ping"));
    assert.equal((await reply).toString(), "echo:ping");
    socket.close();
  });

  test(`node-dtls-client: ${suite} with a wrong key fails the handshake`, async () => {
    const socket = connect(suite, "ascii-device", "fedcba9876543210");
    const failed = once<string>((r) => {
      socket.on("error", (e: Error) => r(e.message));
      socket.on("connected", () => r("connected"));
      socket.on("close", () => r("closed"));
    });
    assert.notEqual(await failed, "connected");
    closeQuietly(socket);
  });
}

test("node-dtls-client: an unknown identity fails like a wrong key", async () => {
  const socket = connect("TLS_PSK_WITH_AES_128_CCM_8", "nobody", ASCII_KEY);
  const failed = once<string>((r) => {
    socket.on("error", (e: Error) => r(e.message));
    socket.on("connected", () => r("connected"));
    socket.on("close", () => r("closed"));
  });
  assert.notEqual(await failed, "connected");
  closeQuietly(socket);
});
