/**
 * One peer's DTLS state after a verified ClientHello: epochs, sequence numbers, the anti-replay
 * window, flight (re)transmission with backoff (RFC 6347 §4.2.4), alerts and the session.
 */
import { ByteReader } from "./byte-reader.ts";
import type { CipherSuite, DirectionalProtection } from "./cipher-suites.ts";
import { AlertDescription, AlertLevel, ContentType, DTLS_1_2, RECORD_HEADER_LENGTH } from "./constants.ts";
import type { FlightItem } from "./flight.ts";
import { fragmentHandshakeMessage, parseHandshakeFragments } from "./handshake-fragment.ts";
import { type DtlsRecord, encodeRecord } from "./record.ts";
import { nullProtection, type RecordProtection } from "./record-protection.ts";
import { ReplayWindow } from "./replay-window.ts";
import { type NegotiatedHello, ServerHandshake } from "./server-handshake.ts";
import { DtlsSession, type RemoteAddress } from "./session.ts";

export interface ConnectionTiming {
  retransmitInitialMs: number;
  retransmitMaxMs: number;
  maxRetransmissions: number;
  handshakeTimeoutMs: number;
  pskLookupTimeoutMs: number;
  sessionIdleMs: number;
}

export interface ConnectionHost {
  send(datagram: Buffer, remote: RemoteAddress): void;
  lookupPsk(identity: Buffer, remote: RemoteAddress): Promise<Buffer | undefined>;
  established(connection: DtlsConnection, session: DtlsSession): void;
  closed(connection: DtlsConnection, reason: string): void;
}

/** Upper bound of what protection adds to a record (CBC: IV 16 + MAC 32 + padding 16). */
const PROTECTION_OVERHEAD = 64;
/** Epoch 1 records that arrive while the PSK lookup runs are held, at most this many. */
const MAX_EARLY_RECORDS = 8;
const MAX_SEQUENCE = 2 ** 48 - 1;
/** Answer a repeated client flight at most this often. */
const MIN_RETRANSMIT_INTERVAL_MS = 100;

interface ReadEpoch {
  protection: RecordProtection;
  window: ReplayWindow;
}

export class DtlsConnection {
  handshake: ServerHandshake | undefined;
  session: DtlsSession | undefined;
  readonly clientRandom: Buffer;
  private readonly read = new Map<number, ReadEpoch>();
  private readonly write: RecordProtection[] = [nullProtection];
  private readonly writeSequence: number[];
  private writeEpoch = 0;
  private earlyRecords: DtlsRecord[] = [];
  private flight: FlightItem[] = [];
  private retransmitTimer: NodeJS.Timeout | undefined;
  private retransmissions = 0;
  private lastRetransmitAt = 0;
  private readonly handshakeTimer: NodeJS.Timeout;
  private ended = false;

  constructor(
    readonly remote: RemoteAddress,
    hello: NegotiatedHello,
    firstServerSequence: number,
    private readonly timing: ConnectionTiming,
    private readonly mtu: number,
    private readonly host: ConnectionHost,
  ) {
    this.clientRandom = hello.clientRandom;
    this.writeSequence = [firstServerSequence, 0];
    this.read.set(0, { protection: nullProtection, window: new ReplayWindow() });
    this.handshakeTimer = setTimeout(
      () => this.fail(AlertDescription.handshakeFailure, "handshake timeout"),
      timing.handshakeTimeoutMs,
    );
    this.handshakeTimer.unref();
    const suite = hello.suite;
    this.handshake = new ServerHandshake(hello, {
      sendFlight: (flight, awaitsReply) => this.sendFlight(flight, awaitsReply),
      cancelRetransmission: () => this.cancelRetransmission(),
      retransmitFlight: () => this.retransmitOnDemand(),
      installKeys: (protections) => this.installKeys(protections),
      lookupPsk: (identity) => this.lookupPsk(identity),
      complete: (identity) => this.complete(identity, suite),
      fail: (alert, reason) => this.fail(alert, reason),
    });
    this.handshake.start();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  onRecords(records: DtlsRecord[]): void {
    for (const record of records) {
      if (this.ended) return;
      if (record.epoch === 0) this.onPlainRecord(record);
      else if (record.epoch === 1) this.onProtectedRecord(record);
      // Any other epoch: this server never negotiates one; drop.
    }
  }

  private onPlainRecord(record: DtlsRecord): void {
    if (record.type === ContentType.handshake) {
      this.feedHandshake(record.fragment, 0);
    } else if (record.type === ContentType.changeCipherSpec) {
      if (record.fragment.length === 1 && record.fragment[0] === 1) this.handshake?.onChangeCipherSpec();
    } else if (record.type === ContentType.alert && !this.session) {
      // Unauthenticated alerts end only a handshake, never an established session.
      this.onAlert(record.fragment);
    }
  }

  private onProtectedRecord(record: DtlsRecord): void {
    const epoch = this.read.get(1);
    if (!epoch) {
      if (this.handshake && this.earlyRecords.length < MAX_EARLY_RECORDS) this.earlyRecords.push(record);
      return;
    }
    if (!epoch.window.isFresh(record.sequence)) return;
    const plaintext = epoch.protection.open(record.type, record.version, 1, record.sequence, record.fragment);
    if (!plaintext) {
      // A Finished that does not open means the peer derived other keys: a wrong PSK. Tell it now
      // instead of letting it retransmit until it times out. Otherwise drop silently (§4.1.2.7).
      if (this.handshake?.state === "awaitFinished" && record.type === ContentType.handshake) {
        this.fail(AlertDescription.badRecordMac, "Finished record does not authenticate");
      }
      return;
    }
    epoch.window.accept(record.sequence);
    this.session?.touch();
    switch (record.type) {
      case ContentType.handshake:
        this.feedHandshake(plaintext, 1);
        break;
      case ContentType.applicationData:
        if (!this.session) return;
        // The peer has our Finished: the handshake state is no longer needed.
        this.handshake = undefined;
        this.flight = [];
        this.session.deliver(plaintext);
        break;
      case ContentType.alert:
        this.onAlert(plaintext);
        break;
    }
  }

  private feedHandshake(plaintext: Buffer, epoch: number): void {
    const handshake = this.handshake;
    if (!handshake) return;
    let fragments: ReturnType<typeof parseHandshakeFragments>;
    try {
      fragments = parseHandshakeFragments(plaintext);
    } catch {
      return;
    }
    for (const fragment of fragments) handshake.onFragment(fragment, epoch);
  }

  private onAlert(plaintext: Buffer): void {
    let level: number;
    let description: number;
    try {
      const r = new ByteReader(plaintext);
      level = r.u8();
      description = r.u8();
    } catch {
      return;
    }
    if (description === AlertDescription.closeNotify) {
      this.close("peer sent close_notify");
    } else if (level === AlertLevel.fatal) {
      this.end(`peer sent fatal alert ${description}`);
    }
  }

  private lookupPsk(identity: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("PSK lookup timed out")),
        this.timing.pskLookupTimeoutMs,
      );
      timer.unref();
      this.host.lookupPsk(identity, this.remote).then(
        (psk) => {
          clearTimeout(timer);
          resolve(psk);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  private installKeys(protections: DirectionalProtection): void {
    if (this.ended) return;
    this.read.set(1, { protection: protections.client, window: new ReplayWindow() });
    this.write[1] = protections.server;
    const held = this.earlyRecords;
    this.earlyRecords = [];
    this.onRecords(held);
  }

  private complete(identity: Buffer, suite: CipherSuite): void {
    clearTimeout(this.handshakeTimer);
    this.writeEpoch = 1;
    const session = new DtlsSession(
      {
        sendApplicationData: (data) =>
          this.sendRecords([{ type: ContentType.applicationData, epoch: 1, plaintext: data }]),
        close: (reason) => this.close(reason),
      },
      this.remote,
      identity,
      suite.name,
      this.timing.sessionIdleMs,
    );
    this.session = session;
    this.host.established(this, session);
  }

  // --- sending ---

  private sendFlight(flight: FlightItem[], awaitsReply: boolean): void {
    this.cancelRetransmission();
    this.flight = flight;
    this.retransmissions = 0;
    this.transmitFlight();
    if (awaitsReply) this.scheduleRetransmission(this.timing.retransmitInitialMs);
  }

  private scheduleRetransmission(ms: number): void {
    this.retransmitTimer = setTimeout(() => {
      if (this.ended) return;
      if (this.retransmissions >= this.timing.maxRetransmissions) {
        this.fail(AlertDescription.handshakeFailure, "peer did not answer the flight");
        return;
      }
      this.retransmissions++;
      this.transmitFlight();
      this.scheduleRetransmission(Math.min(ms * 2, this.timing.retransmitMaxMs));
    }, ms);
    this.retransmitTimer.unref();
  }

  private cancelRetransmission(): void {
    clearTimeout(this.retransmitTimer);
    this.retransmitTimer = undefined;
  }

  private retransmitOnDemand(): void {
    const now = Date.now();
    if (now - this.lastRetransmitAt < MIN_RETRANSMIT_INTERVAL_MS || this.flight.length === 0) return;
    this.lastRetransmitAt = now;
    this.transmitFlight();
  }

  /** Each (re)transmission gets fresh record sequence numbers (RFC 6347 §4.2.4). */
  private transmitFlight(): void {
    const records: OutgoingRecord[] = [];
    for (const item of this.flight) {
      if (item.kind === "changeCipherSpec") {
        records.push({ type: ContentType.changeCipherSpec, epoch: 0, plaintext: Buffer.of(1) });
        continue;
      }
      const room = this.mtu - RECORD_HEADER_LENGTH - (item.epoch > 0 ? PROTECTION_OVERHEAD : 0);
      for (const fragment of fragmentHandshakeMessage(item.msgType, item.messageSeq, item.body, room)) {
        records.push({ type: ContentType.handshake, epoch: item.epoch, plaintext: fragment });
      }
    }
    this.sendRecords(records);
  }

  /** Protects records and packs them into datagrams of at most mtu bytes. */
  private sendRecords(records: OutgoingRecord[]): void {
    if (this.ended) return;
    let datagram: Buffer[] = [];
    let size = 0;
    for (const record of records) {
      const encoded = this.protect(record);
      if (!encoded) return;
      if (size > 0 && size + encoded.length > this.mtu) {
        this.host.send(Buffer.concat(datagram), this.remote);
        datagram = [];
        size = 0;
      }
      datagram.push(encoded);
      size += encoded.length;
    }
    if (size > 0) this.host.send(Buffer.concat(datagram), this.remote);
  }

  private protect(record: OutgoingRecord): Buffer | undefined {
    const protection = this.write[record.epoch];
    const sequence = this.writeSequence[record.epoch];
    if (!protection || sequence === undefined) return undefined;
    if (sequence >= MAX_SEQUENCE) {
      this.end("record sequence numbers exhausted");
      return undefined;
    }
    this.writeSequence[record.epoch] = sequence + 1;
    const fragment = protection.seal(record.type, DTLS_1_2, record.epoch, sequence, record.plaintext);
    return encodeRecord({ type: record.type, version: DTLS_1_2, epoch: record.epoch, sequence, fragment });
  }

  private sendAlert(level: number, description: number): void {
    this.sendRecords([
      { type: ContentType.alert, epoch: this.writeEpoch, plaintext: Buffer.of(level, description) },
    ]);
  }

  // --- ending ---

  /** Ends the handshake with a fatal alert. */
  fail(alert: number, reason: string): void {
    if (this.ended) return;
    if (this.handshake && this.handshake.state !== "failed") this.handshake.state = "failed";
    this.sendAlert(AlertLevel.fatal, alert);
    this.end(reason);
  }

  /** Ends with close_notify (RFC 5246 §7.2.1). */
  close(reason: string): void {
    if (this.ended) return;
    this.sendAlert(AlertLevel.warning, AlertDescription.closeNotify);
    this.end(reason);
  }

  /** Ends without sending anything. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.handshakeTimer);
    this.cancelRetransmission();
    this.earlyRecords = [];
    this.flight = [];
    this.session?.ended(reason);
    this.host.closed(this, reason);
  }
}

interface OutgoingRecord {
  type: number;
  epoch: number;
  plaintext: Buffer;
}
