import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { after, describe, it } from "node:test";
import type { DtlsSession } from "#gateway/dtls/index.ts";
import { startLossyProxy } from "#test/gateway/dtls/support/lossy-proxy.ts";
import { echo, KEY, once, startServer } from "#test/gateway/dtls/support/servers.ts";

/**
 * Interoperability of gateway/dtls with real DTLS 1.2 PSK clients: `openssl s_client` (OpenSSL 3)
 * and `gnutls-cli` (GnuTLS), each with both suites, exchanging application data; a wrong key
 * fails. Needs the openssl and gnutls-bin Debian packages.
 */
const hasOpenssl = spawnSync("openssl", ["version"]).error === undefined;
const hasGnutls = spawnSync("gnutls-cli", ["--version"]).error === undefined;
const HEX = KEY.toString("hex");

const { server, port } = await startServer({ timing: { retransmitInitialMs: 500 } });
const sessions = echo(server);
after(() => server.close());

interface Peer {
  output: () => string;
  write: (line: string) => void;
  stop: () => Promise<number | null>;
}

function runPeer(command: string, args: string[]): Peer {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  return {
    output: () => out,
    write: (line) => child.stdin.write(`${line}\n`),
    stop: async () => {
      child.stdin.end();
      const killer = setTimeout(() => child.kill("SIGTERM"), 1000);
      const code = await exited;
      clearTimeout(killer);
      clearTimeout(timer);
      return code;
    },
  };
}

async function exchange(peer: Peer, text: string): Promise<DtlsSession> {
  const count = sessions.length;
  await once<void>((r) => {
    const poll = setInterval(() => {
      if (sessions.length > count) {
        clearInterval(poll);
        r();
      }
    }, 20);
  }, 15_000);
  const session = sessions.at(-1)!;
  const got = once<string>((r) => session.once("data", (d) => r(d.toString())), 10_000);
  peer.write(text);
  assert.equal((await got).trim(), text);
  await once<void>((r) => {
    const poll = setInterval(() => {
      if (peer.output().includes(`echo:${text}`)) {
        clearInterval(poll);
        r();
      }
    }, 20);
  }, 10_000);
  return session;
}

const openssl = (cipher: string, key: string, to = port) =>
  runPeer("openssl", [
    "s_client",
    "-dtls1_2",
    "-connect",
    `127.0.0.1:${to}`,
    "-psk",
    key,
    "-psk_identity",
    "device-1",
    "-cipher",
    cipher,
    "-quiet",
  ]);

const gnutls = (cipher: string, mac: string, key: string) =>
  runPeer("gnutls-cli", [
    "--udp",
    "-p",
    String(port),
    "127.0.0.1",
    "--pskusername",
    "device-1",
    "--pskkey",
    key,
    "--priority",
    `NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+${cipher}:-MAC-ALL:+${mac}`,
  ]);

describe("openssl s_client -dtls1_2 -psk", { skip: hasOpenssl ? false : "openssl not found" }, () => {
  for (const [cipher, suite] of [
    ["PSK-AES128-CCM8", "TLS_PSK_WITH_AES_128_CCM_8"],
    ["PSK-AES128-CBC-SHA256", "TLS_PSK_WITH_AES_128_CBC_SHA256"],
  ] as const) {
    it(`${cipher}: handshake and application data both ways`, async () => {
      const peer = openssl(cipher, HEX);
      const session = await exchange(peer, `openssl ${cipher}`);
      assert.equal(session.cipherSuite, suite);
      assert.equal(session.identity.toString(), "device-1");
      await peer.stop();
    });
  }

  it("PSK-AES128-CCM8 through 20% loss and reordering (OpenSSL's own retransmission)", async () => {
    const proxy = await startLossyProxy(port, { loss: 0.2, reorder: 0.2, duplicate: 0.1, seed: 7 });
    const peer = openssl("PSK-AES128-CCM8", HEX, proxy.port);
    const count = sessions.length;
    await once<void>((r) => {
      const poll = setInterval(() => {
        if (sessions.length > count) {
          clearInterval(poll);
          r();
        }
      }, 20);
    }, 20_000);
    await peer.stop();
    await proxy.close();
  });

  it("a wrong key fails the handshake", async () => {
    const failed = once<string>(
      (r) => server.once("handshakeFailed", (_remote, reason) => r(reason)),
      15_000,
    );
    const peer = openssl("PSK-AES128-CCM8", "ff".repeat(16));
    assert.match(await failed, /authenticate|verify/);
    assert.notEqual(await peer.stop(), 0);
  });
});

describe("gnutls-cli --udp --pskkey", {
  skip: hasGnutls ? false : "gnutls-cli not found (apt-get install gnutls-bin)",
}, () => {
  for (const [cipher, mac, suite] of [
    ["AES-128-CCM-8", "AEAD", "TLS_PSK_WITH_AES_128_CCM_8"],
    ["AES-128-CBC", "SHA256", "TLS_PSK_WITH_AES_128_CBC_SHA256"],
  ] as const) {
    it(`${cipher} ${mac}: handshake and application data both ways`, async () => {
      const peer = gnutls(cipher, mac, HEX);
      const session = await exchange(peer, `gnutls ${cipher}`);
      assert.equal(session.cipherSuite, suite);
      const closed = once<string>((r) => session.once("close", r), 5000);
      await peer.stop();
      assert.equal(await closed, "peer sent close_notify");
    });
  }

  it("a wrong key fails the handshake", async () => {
    const failed = once<string>(
      (r) => server.once("handshakeFailed", (_remote, reason) => r(reason)),
      15_000,
    );
    const peer = gnutls("AES-128-CCM-8", "AEAD", "ee".repeat(16));
    assert.match(await failed, /authenticate|verify/);
    await peer.stop();
  });
});
