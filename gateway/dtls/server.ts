/**
 * A DTLS 1.2 PSK server on node:dgram. Before a ClientHello carries a valid cookie nothing is
 * stored and nothing larger than the datagram is sent; after it, handshakes and sessions are
 * bounded per source address and in total.
 */
import { createSocket, type Socket, type SocketType } from "node:dgram";
import { EventEmitter } from "node:events";
import type { AddressInfo } from "node:net";
import { type CipherSuiteName, SUPPORTED_SUITES } from "./cipher-suites.ts";
import { type ConnectionTiming, DtlsConnection } from "./connection.ts";
import {
  AlertDescription,
  AlertLevel,
  ContentType,
  DTLS_1_0,
  DTLS_1_2,
  EMPTY_RENEGOTIATION_INFO_SCSV,
  ExtensionType,
  HandshakeType,
} from "./constants.ts";
import { CookieJar } from "./cookie.ts";
import { encodeHandshakeMessage, parseHandshakeFragments } from "./handshake-fragment.ts";
import { type ClientHello, encodeHelloVerifyRequest, parseClientHello } from "./hello-messages.ts";
import { type DtlsRecord, encodeRecord, parseDatagram } from "./record.ts";
import type { NegotiatedHello } from "./server-handshake.ts";
import type { DtlsSession, RemoteAddress } from "./session.ts";

/** Looks up the PSK for an identity; undefined when none (the handshake then fails like a wrong key). */
export type PskLookup = (identity: Buffer, remote: RemoteAddress) => Promise<Buffer | undefined>;

export interface DtlsServerLimits {
  maxSessions: number;
  maxHandshakes: number;
  maxHandshakesPerSource: number;
}

export interface DtlsServerOptions {
  psk: PskLookup;
  cipherSuites?: CipherSuiteName[];
  limits?: Partial<DtlsServerLimits>;
  timing?: Partial<ConnectionTiming & { cookieRotationMs: number }>;
  /** Largest datagram the server sends; handshake messages are fragmented to fit. */
  mtu?: number;
  type?: SocketType;
}

export type DtlsServerEvents = {
  session: [DtlsSession];
  handshakeFailed: [RemoteAddress, string];
  listening: [AddressInfo];
  error: [Error];
};

export interface DtlsServerStats {
  handshakes: number;
  sessions: number;
  helloVerifyRequests: number;
  refusedHandshakes: number;
  droppedDatagrams: number;
}

const DEFAULT_LIMITS: DtlsServerLimits = {
  maxSessions: 10_000,
  maxHandshakes: 1_000,
  maxHandshakesPerSource: 8,
};
const DEFAULT_TIMING: ConnectionTiming & { cookieRotationMs: number } = {
  retransmitInitialMs: 1_000,
  retransmitMaxMs: 60_000,
  maxRetransmissions: 6,
  handshakeTimeoutMs: 30_000,
  pskLookupTimeoutMs: 5_000,
  sessionIdleMs: 300_000,
  cookieRotationMs: 60_000,
};

const keyOf = (remote: RemoteAddress): string => `${remote.address}|${remote.port}`;

export class DtlsServer extends EventEmitter<DtlsServerEvents> {
  private readonly socket: Socket;
  private readonly connections = new Map<string, DtlsConnection>();
  private readonly handshakesBySource = new Map<string, number>();
  private readonly limits: DtlsServerLimits;
  private readonly timing: ConnectionTiming & { cookieRotationMs: number };
  private readonly cookies: CookieJar;
  private readonly suites;
  private readonly mtu: number;
  private socketClosed = false;
  private readonly counters = {
    handshakes: 0,
    sessions: 0,
    helloVerifyRequests: 0,
    refusedHandshakes: 0,
    droppedDatagrams: 0,
  };

  constructor(private readonly options: DtlsServerOptions) {
    super();
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.cookies = new CookieJar(this.timing.cookieRotationMs);
    const wanted = options.cipherSuites;
    this.suites = SUPPORTED_SUITES.filter((s) => !wanted || wanted.includes(s.name));
    this.mtu = options.mtu ?? 1200;
    this.socket = createSocket(options.type ?? "udp4");
    this.socket.on("message", (datagram, rinfo) => this.handleDatagram(datagram, rinfo));
    this.socket.on("error", (error) => this.emit("error", error));
  }

  listen(port = 5684, host = "0.0.0.0"): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.socket.once("error", reject);
      this.socket.bind(port, host, () => {
        this.socket.off("error", reject);
        const address = this.socket.address();
        this.emit("listening", address);
        resolve(address);
      });
    });
  }

  address(): AddressInfo {
    return this.socket.address();
  }

  stats(): DtlsServerStats {
    return { ...this.counters };
  }

  /** Ends every session with close_notify and closes the socket. */
  async close(): Promise<void> {
    for (const connection of [...this.connections.values()]) connection.close("server closing");
    // Let the close_notify datagrams leave before the socket goes.
    await new Promise((resolve) => setTimeout(resolve, 20));
    this.socketClosed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  /** Every datagram goes through here; none can throw out of it. */
  handleDatagram(datagram: Buffer, remote: RemoteAddress): void {
    try {
      const records = parseDatagram(datagram);
      const first = records[0];
      if (!first) {
        this.counters.droppedDatagrams++;
        return;
      }
      const connection = this.connections.get(keyOf(remote));
      const hello =
        first.epoch === 0 && first.type === ContentType.handshake
          ? unfragmentedClientHello(first)
          : undefined;
      if (hello) {
        this.onClientHello(hello, first, remote, connection, datagram.length);
      } else if (connection) {
        connection.onRecords(records);
      } else {
        this.counters.droppedDatagrams++;
      }
    } catch (error) {
      // A bug must cost one datagram, not the process.
      this.counters.droppedDatagrams++;
      this.emit("error", error instanceof Error ? error : new Error(String(error)));
    }
  }

  private onClientHello(
    found: { hello: ClientHello; messageSeq: number; body: Buffer },
    record: DtlsRecord,
    remote: RemoteAddress,
    connection: DtlsConnection | undefined,
    datagramLength: number,
  ): void {
    const { hello } = found;
    if (connection?.clientRandom.equals(hello.random)) {
      // A retransmitted (or replayed) ClientHello of a handshake or session we have.
      connection.onRecords([record]);
      return;
    }
    if (!this.cookies.verify(remote.address, remote.port, hello)) {
      this.sendHelloVerifyRequest(hello, found.messageSeq, record, remote, datagramLength);
      return;
    }
    // DTLS versions count down: 1.2 is 0xfefd, 1.0 is 0xfeff.
    if (hello.clientVersion > DTLS_1_2) {
      this.sendPlainAlert(AlertDescription.protocolVersion, record, remote);
      return;
    }
    const offered = new Set(hello.cipherSuites);
    const suite = this.suites.find((s) => offered.has(s.id));
    const renegotiationInfo = hello.extensions.get(ExtensionType.renegotiationInfo);
    if (
      !suite ||
      !hello.compressionMethods.includes(0) ||
      (renegotiationInfo && !renegotiationInfo.equals(Buffer.of(0)))
    ) {
      this.sendPlainAlert(AlertDescription.handshakeFailure, record, remote);
      return;
    }
    if (!this.admitHandshake(remote)) {
      this.counters.refusedHandshakes++;
      return;
    }
    // RFC 6347 §4.2.8: a valid new ClientHello on an address with a session means the client lost
    // its state (reboot). The old session ends; the new handshake replaces it.
    connection?.end("replaced by a new handshake from the same address");
    const negotiated: NegotiatedHello = {
      messageSeq: found.messageSeq,
      body: found.body,
      clientRandom: Buffer.from(hello.random),
      suite,
      extendedMasterSecret: hello.extensions.has(ExtensionType.extendedMasterSecret),
      secureRenegotiation:
        renegotiationInfo !== undefined || hello.cipherSuites.includes(EMPTY_RENEGOTIATION_INFO_SCSV),
    };
    this.counters.handshakes++;
    this.handshakesBySource.set(remote.address, (this.handshakesBySource.get(remote.address) ?? 0) + 1);
    const created = new DtlsConnection(
      { address: remote.address, port: remote.port },
      negotiated,
      record.sequence,
      this.timing,
      this.mtu,
      {
        send: (datagram, to) => this.send(datagram, to),
        lookupPsk: (identity, from) => this.options.psk(identity, from),
        established: (c, session) => this.onEstablished(c, session),
        closed: (c, reason) => this.onClosed(c, reason),
      },
    );
    if (!created.isEnded) this.connections.set(keyOf(remote), created);
  }

  private admitHandshake(remote: RemoteAddress): boolean {
    const fromSource = this.handshakesBySource.get(remote.address) ?? 0;
    return (
      this.counters.handshakes < this.limits.maxHandshakes &&
      fromSource < this.limits.maxHandshakesPerSource &&
      this.counters.handshakes + this.counters.sessions < this.limits.maxSessions
    );
  }

  private releaseHandshake(remote: RemoteAddress): void {
    this.counters.handshakes--;
    const left = (this.handshakesBySource.get(remote.address) ?? 1) - 1;
    if (left <= 0) this.handshakesBySource.delete(remote.address);
    else this.handshakesBySource.set(remote.address, left);
  }

  private onEstablished(connection: DtlsConnection, session: DtlsSession): void {
    this.releaseHandshake(connection.remote);
    this.counters.sessions++;
    this.emit("session", session);
  }

  private onClosed(connection: DtlsConnection, reason: string): void {
    if (connection.session) this.counters.sessions--;
    else {
      this.releaseHandshake(connection.remote);
      this.emit("handshakeFailed", connection.remote, reason);
    }
    const key = keyOf(connection.remote);
    if (this.connections.get(key) === connection) this.connections.delete(key);
  }

  /** Stateless; never larger than the datagram that asked for it (no amplification). */
  private sendHelloVerifyRequest(
    hello: ClientHello,
    messageSeq: number,
    record: DtlsRecord,
    remote: RemoteAddress,
    datagramLength: number,
  ): void {
    const cookie = this.cookies.issue(remote.address, remote.port, hello);
    const message = encodeHandshakeMessage(
      HandshakeType.helloVerifyRequest,
      messageSeq,
      encodeHelloVerifyRequest(cookie),
    );
    // RFC 6347 §4.2.1: the HelloVerifyRequest reuses the ClientHello's record sequence number.
    const datagram = encodeRecord({
      type: ContentType.handshake,
      version: DTLS_1_0,
      epoch: 0,
      sequence: record.sequence,
      fragment: message,
    });
    if (datagram.length > datagramLength) {
      this.counters.droppedDatagrams++;
      return;
    }
    this.counters.helloVerifyRequests++;
    this.send(datagram, remote);
  }

  private sendPlainAlert(description: number, record: DtlsRecord, remote: RemoteAddress): void {
    const datagram = encodeRecord({
      type: ContentType.alert,
      version: DTLS_1_2,
      epoch: 0,
      sequence: record.sequence,
      fragment: Buffer.of(AlertLevel.fatal, description),
    });
    this.send(datagram, remote);
  }

  private send(datagram: Buffer, remote: RemoteAddress): void {
    if (this.socketClosed) return;
    this.socket.send(datagram, remote.port, remote.address, () => {
      // Send errors (ICMP unreachable, closed socket) are a lost datagram: retransmission covers it.
    });
  }
}

/** A ClientHello that fits in one record; a fragmented one is dropped before the cookie (no state). */
function unfragmentedClientHello(
  record: DtlsRecord,
): { hello: ClientHello; messageSeq: number; body: Buffer } | undefined {
  try {
    const fragments = parseHandshakeFragments(record.fragment);
    const fragment = fragments[0];
    if (fragments.length !== 1 || !fragment || fragment.msgType !== HandshakeType.clientHello)
      return undefined;
    if (fragment.fragmentOffset !== 0 || fragment.body.length !== fragment.length) return undefined;
    return { hello: parseClientHello(fragment.body), messageSeq: fragment.messageSeq, body: fragment.body };
  } catch {
    return undefined;
  }
}
