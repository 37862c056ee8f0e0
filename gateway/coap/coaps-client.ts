/**
 * A CoAP client over DTLS 1.2 PSK (coaps://), for firmware developers' tooling, tests and the
 * bench. The DTLS client is node-dtls-client; it takes the PSK as a string and reads it with
 * Buffer.from(key, "ascii"), which keeps the low byte of each character, so a binary key passes
 * intact as its latin1 string.
 */
import type { dtls as Dtls } from "node-dtls-client";
import { CoapClient, type CoapClientOptions } from "./client.ts";

/**
 * Loaded at run time, not bundled: node-dtls-client requires an optional native module
 * (node-aead-crypto) that esbuild cannot bundle into the CLI (scripts/build-cli.mjs).
 */
const DTLS_CLIENT_MODULE = "node-dtls-client";
let loaded: Promise<typeof Dtls> | undefined;
const loadDtls = () => {
  loaded ??= (import(DTLS_CLIENT_MODULE) as Promise<{ dtls: typeof Dtls }>).then((m) => m.dtls);
  return loaded;
};

export type CoapsCipherSuite = "TLS_PSK_WITH_AES_128_CCM_8" | "TLS_PSK_WITH_AES_128_CBC_SHA256";

export interface CoapsConnectOptions extends CoapClientOptions {
  host: string;
  port: number;
  identity: string;
  /** The PSK's raw bytes. */
  key: Uint8Array;
  cipherSuites?: CoapsCipherSuite[];
  /** The handshake must finish within this long (default 10 s). */
  handshakeTimeoutMs?: number;
}

export interface CoapsConnection {
  coap: CoapClient;
  close(): Promise<void>;
  /** Resolves when the DTLS session ends (close_notify, an alert, or close()). */
  closed: Promise<string>;
}

/** Handshakes, then answers with a CoAP client on the session; rejects when the handshake fails. */
export async function connectCoaps(options: CoapsConnectOptions): Promise<CoapsConnection> {
  const dtls = await loadDtls();
  const socket = dtls.createSocket({
    type: options.host.includes(":") ? "udp6" : "udp4",
    address: options.host,
    port: options.port,
    psk: { [options.identity]: Buffer.from(options.key).toString("latin1") },
    ciphers: options.cipherSuites ?? ["TLS_PSK_WITH_AES_128_CCM_8", "TLS_PSK_WITH_AES_128_CBC_SHA256"],
    timeout: options.handshakeTimeoutMs ?? 10_000,
  });
  const coap = new CoapClient((datagram) => socket.send(datagram), options);
  let socketClosed = false;
  const closed = new Promise<string>((resolve) => {
    socket.on("close", () => {
      socketClosed = true;
      coap.close();
      resolve("closed");
    });
  });
  const close = async () => {
    if (socketClosed) return;
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // node-dtls-client closes its socket itself after a failed handshake
      }
    });
  };
  return new Promise((resolve, reject) => {
    socket.on("connected", () => resolve({ coap, close, closed }));
    socket.on("error", (error: Error) => {
      reject(error);
      void close();
    });
    socket.on("message", (message: Buffer) => coap.receive(message));
    void closed.then(() => reject(new Error("the DTLS handshake failed (the server ended it)")));
  });
}
