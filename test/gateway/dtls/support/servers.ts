/** Starts a DTLS server on 127.0.0.1 with fast timers for tests. */
import { DtlsServer, type DtlsServerOptions, type DtlsSession } from "#gateway/dtls/index.ts";

export const KEY = Buffer.from("00112233445566778899aabbccddeeff", "hex");
/** node-dtls-client takes the PSK as an ASCII string. */
export const ASCII_KEY = "0123456789abcdef";

export async function startServer(
  options: Partial<DtlsServerOptions> = {},
): Promise<{ server: DtlsServer; port: number }> {
  const server = new DtlsServer({
    psk: async (identity) => {
      if (identity.toString() === "device-1") return KEY;
      if (identity.toString() === "ascii-device") return Buffer.from(ASCII_KEY, "ascii");
      return undefined;
    },
    ...options,
    timing: {
      retransmitInitialMs: 100,
      retransmitMaxMs: 800,
      maxRetransmissions: 8,
      handshakeTimeoutMs: 10_000,
      ...options.timing,
    },
  });
  server.on("error", (error) => {
    throw error;
  });
  const { port } = await server.listen(0, "127.0.0.1");
  return { server, port };
}

/** Every session echoes what it receives, prefixed with "echo:". */
export function echo(server: DtlsServer): DtlsSession[] {
  const sessions: DtlsSession[] = [];
  server.on("session", (s) => {
    sessions.push(s);
    s.on("data", (d) => s.send(Buffer.concat([Buffer.from("echo:"), d])));
  });
  return sessions;
}

export function once<T>(register: (resolve: (value: T) => void) => void, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out waiting")), ms);
    register((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
