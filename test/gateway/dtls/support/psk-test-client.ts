/**
 * A small DTLS 1.2 PSK client for protocol tests: it retransmits its flights, can fragment its
 * handshake messages, and records what it sent (for replay tests). Built on the server's record
 * primitives; independent peers (openssl, gnutls, node-dtls-client) check those in interop.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { EventEmitter } from "node:events";
import { ByteReader, u16, vector8, vector16 } from "#gateway/dtls/byte-reader.ts";
import { type CipherSuite, keyBlockLength, protectionsFromKeyBlock } from "#gateway/dtls/cipher-suites.ts";
import { ContentType, DTLS_1_2, ExtensionType, HandshakeType } from "#gateway/dtls/constants.ts";
import {
  encodeHandshakeMessage,
  fragmentHandshakeMessage,
  parseHandshakeFragments,
} from "#gateway/dtls/handshake-fragment.ts";
import { HandshakeReassembler } from "#gateway/dtls/handshake-reassembler.ts";
import {
  extendedMasterSecret,
  finishedVerifyData,
  keyBlock,
  masterSecret,
  pskPremasterSecret,
} from "#gateway/dtls/prf.ts";
import { encodeRecord, parseDatagram } from "#gateway/dtls/record.ts";
import { nullProtection, type RecordProtection } from "#gateway/dtls/record-protection.ts";

export interface PskTestClientOptions {
  port: number;
  host?: string;
  identity: Buffer;
  psk: Buffer;
  suite: CipherSuite;
  /** Largest handshake fragment the client sends (header included). */
  fragmentSize?: number;
  retransmitMs?: number;
  extendedMasterSecret?: boolean;
  /** A socket to send through (e.g. bound by the test); the client makes one otherwise. */
  socket?: Socket;
}

type Out = { type: number; epoch: number; plaintext: Buffer };

export class PskTestClient extends EventEmitter<{ data: [Buffer]; alert: [number, number] }> {
  readonly socket: Socket;
  readonly sent: Buffer[] = [];
  private readonly random = randomBytes(32);
  private readonly reassembler = new HandshakeReassembler(4096, 8);
  private readonly transcript: Buffer[] = [];
  private writeSeq = [0, 0];
  private write: RecordProtection[] = [nullProtection];
  private read: RecordProtection | undefined;
  private flight: Out[] = [];
  private timer: NodeJS.Timeout | undefined;
  private nextReceive = 0;
  private serverRandom = Buffer.alloc(0);
  private serverEms = false;
  private master: Buffer = Buffer.alloc(0);
  private resolveConnect: (() => void) | undefined;
  private rejectConnect: ((e: Error) => void) | undefined;
  connected = false;
  private closed = false;

  constructor(private readonly o: PskTestClientOptions) {
    super();
    this.socket = o.socket ?? createSocket("udp4");
    this.socket.on("message", (m) => this.onDatagram(m));
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.resolveConnect = resolve;
      this.rejectConnect = reject;
      this.sendFlight([this.clientHello(Buffer.alloc(0), 0)]);
    });
  }

  send(data: Buffer): void {
    this.transmit([{ type: ContentType.applicationData, epoch: 1, plaintext: data }]);
  }

  sendAlert(level: number, description: number): void {
    this.transmit([{ type: ContentType.alert, epoch: 1, plaintext: Buffer.of(level, description) }]);
  }

  /** Sends a raw datagram through the client's socket. */
  sendRaw(datagram: Buffer): void {
    if (this.closed) return;
    this.socket.send(datagram, this.o.port, this.o.host ?? "127.0.0.1");
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.socket.close();
  }

  private clientHello(cookie: Buffer, messageSeq: number): Out {
    const extensions: Buffer[] = [
      Buffer.concat([u16(ExtensionType.renegotiationInfo), vector16(Buffer.of(0))]),
    ];
    if (this.o.extendedMasterSecret)
      extensions.push(Buffer.concat([u16(ExtensionType.extendedMasterSecret), u16(0)]));
    const body = Buffer.concat([
      u16(DTLS_1_2),
      this.random,
      vector8(Buffer.alloc(0)),
      vector8(cookie),
      vector16(u16(this.o.suite.id)),
      vector8(Buffer.of(0)),
      vector16(Buffer.concat(extensions)),
    ]);
    if (cookie.length > 0)
      this.transcript.push(encodeHandshakeMessage(HandshakeType.clientHello, messageSeq, body));
    // A ClientHello always goes unfragmented (the server keeps no state before the cookie).
    return {
      type: ContentType.handshake,
      epoch: 0,
      plaintext: encodeHandshakeMessage(HandshakeType.clientHello, messageSeq, body),
    };
  }

  private handshake(msgType: number, messageSeq: number, body: Buffer, epoch: number): Out[] {
    this.transcript.push(encodeHandshakeMessage(msgType, messageSeq, body));
    const size = this.o.fragmentSize ?? 1000;
    return fragmentHandshakeMessage(msgType, messageSeq, body, size).map((plaintext) => ({
      type: ContentType.handshake,
      epoch,
      plaintext,
    }));
  }

  private sendFlight(flight: Out[]): void {
    clearTimeout(this.timer);
    this.flight = flight;
    this.transmit(flight);
    const again = (ms: number) => {
      this.timer = setTimeout(() => {
        this.transmit(this.flight);
        again(Math.min(ms * 2, 2000));
      }, ms);
      this.timer.unref();
    };
    again(this.o.retransmitMs ?? 200);
  }

  private transmit(records: Out[]): void {
    for (const r of records) {
      const protection = this.write[r.epoch];
      const seq = this.writeSeq[r.epoch] ?? 0;
      if (!protection) continue;
      this.writeSeq[r.epoch] = seq + 1;
      const fragment = protection.seal(r.type, DTLS_1_2, r.epoch, seq, r.plaintext);
      const datagram = encodeRecord({
        type: r.type,
        version: DTLS_1_2,
        epoch: r.epoch,
        sequence: seq,
        fragment,
      });
      this.sent.push(datagram);
      this.sendRaw(datagram);
    }
  }

  private onDatagram(datagram: Buffer): void {
    for (const record of parseDatagram(datagram)) {
      let plaintext: Buffer | undefined = record.fragment;
      if (record.epoch === 1) {
        plaintext = this.read?.open(record.type, record.version, 1, record.sequence, record.fragment);
        if (!plaintext) continue;
      }
      if (record.type === ContentType.alert && plaintext.length === 2) {
        this.emit("alert", plaintext[0] ?? 0, plaintext[1] ?? 0);
        this.rejectConnect?.(new Error(`alert ${plaintext[1]}`));
      } else if (record.type === ContentType.applicationData && record.epoch === 1) {
        this.emit("data", plaintext);
      } else if (record.type === ContentType.handshake) {
        for (const f of parseHandshakeFragments(plaintext)) {
          if (f.messageSeq < this.nextReceive && f.msgType !== HandshakeType.helloVerifyRequest) continue;
          if (f.msgType === HandshakeType.finished && record.epoch !== 1) continue;
          this.reassembler.add(f);
        }
        this.drain();
      }
    }
  }

  private drain(): void {
    for (;;) {
      const m = this.reassembler.take(this.nextReceive);
      if (!m) return;
      this.nextReceive++;
      if (m.msgType === HandshakeType.helloVerifyRequest) {
        const r = new ByteReader(m.body);
        r.u16();
        const cookie = r.vector8();
        this.nextReceive = 1;
        this.sendFlight([this.clientHello(Buffer.from(cookie), 1)]);
      } else if (m.msgType === HandshakeType.serverHello) {
        this.transcript.push(encodeHandshakeMessage(m.msgType, m.messageSeq, m.body));
        const r = new ByteReader(m.body);
        r.u16();
        this.serverRandom = Buffer.from(r.bytes(32));
        r.vector8();
        r.u16();
        r.u8();
        if (r.remaining > 0) {
          const ext = new ByteReader(r.vector16());
          while (ext.remaining > 0) {
            const type = ext.u16();
            ext.vector16();
            if (type === ExtensionType.extendedMasterSecret) this.serverEms = true;
          }
        }
      } else if (m.msgType === HandshakeType.serverHelloDone) {
        this.transcript.push(encodeHandshakeMessage(m.msgType, m.messageSeq, m.body));
        this.onServerHelloDone(2); // our own message_seq: CH 0, CH with cookie 1
      } else if (m.msgType === HandshakeType.finished) {
        const expected = finishedVerifyData(this.master, "server", Buffer.concat(this.transcript));
        if (m.body.length === 12 && timingSafeEqual(expected, m.body)) {
          clearTimeout(this.timer);
          this.connected = true;
          this.resolveConnect?.();
        } else this.rejectConnect?.(new Error("server Finished does not verify"));
      }
    }
  }

  private onServerHelloDone(seq: number): void {
    const cke = this.handshake(HandshakeType.clientKeyExchange, seq, vector16(this.o.identity), 0);
    const premaster = pskPremasterSecret(this.o.psk);
    this.master = this.serverEms
      ? extendedMasterSecret(premaster, createHash("sha256").update(Buffer.concat(this.transcript)).digest())
      : masterSecret(premaster, this.random, this.serverRandom);
    const block = keyBlock(this.master, this.random, this.serverRandom, keyBlockLength(this.o.suite));
    const p = protectionsFromKeyBlock(this.o.suite, block);
    this.write[1] = p.client;
    this.read = p.server;
    const verify = finishedVerifyData(this.master, "client", Buffer.concat(this.transcript));
    const finished = this.handshake(HandshakeType.finished, seq + 1, verify, 1);
    this.sendFlight([
      ...cke,
      { type: ContentType.changeCipherSpec, epoch: 0, plaintext: Buffer.of(1) },
      ...finished,
    ]);
  }
}
