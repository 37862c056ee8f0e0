/** The DTLS 1.2 PSK server: the public boundary of gateway/dtls. */
export { type CipherSuiteName, SUPPORTED_SUITES } from "./cipher-suites.ts";
export type { ConnectionTiming } from "./connection.ts";
export {
  DtlsServer,
  type DtlsServerEvents,
  type DtlsServerLimits,
  type DtlsServerOptions,
  type DtlsServerStats,
  type PskLookup,
} from "./server.ts";
export { DtlsSession, MAX_APPLICATION_DATA, type RemoteAddress } from "./session.ts";
