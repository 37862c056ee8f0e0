/**
 * The server side of a full DTLS 1.2 PSK handshake, from a verified ClientHello on (RFC 6347 §4.2,
 * RFC 4279). It sees complete handshake messages in order and tells its host what to send.
 *
 *   client                         server
 *   ClientHello (with cookie)  ->
 *                              <-  ServerHello, ServerHelloDone          (flight 4, retransmitted)
 *   ClientKeyExchange, CCS,
 *   Finished                   ->  (async PSK lookup by identity)
 *                              <-  CCS, Finished                         (flight 6, resent on demand)
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { DecodeError } from "./byte-reader.ts";
import {
  type CipherSuite,
  type DirectionalProtection,
  keyBlockLength,
  protectionsFromKeyBlock,
} from "./cipher-suites.ts";
import { AlertDescription, HandshakeType } from "./constants.ts";
import type { FlightItem } from "./flight.ts";
import { encodeHandshakeMessage, type HandshakeFragment } from "./handshake-fragment.ts";
import { HandshakeReassembler } from "./handshake-reassembler.ts";
import { encodeServerHello, parseFinished, parsePskClientKeyExchange } from "./hello-messages.ts";
import {
  extendedMasterSecret,
  finishedVerifyData,
  keyBlock,
  masterSecret,
  pskPremasterSecret,
} from "./prf.ts";

export interface HandshakeHost {
  /** Send a flight; awaitsReply: retransmit it on a timer until the peer's next flight arrives. */
  sendFlight(flight: FlightItem[], awaitsReply: boolean): void;
  cancelRetransmission(): void;
  /** The peer repeated its previous flight: send ours again. */
  retransmitFlight(): void;
  /** Epoch 1 keys are known: open the peer's epoch 1 records (including any held back). */
  installKeys(protections: DirectionalProtection): void;
  lookupPsk(identity: Buffer): Promise<Buffer | undefined>;
  complete(identity: Buffer): void;
  fail(alert: number, reason: string): void;
}

export type HandshakeState = "awaitKeyExchange" | "awaitPsk" | "awaitFinished" | "done" | "failed";

export interface NegotiatedHello {
  messageSeq: number;
  body: Buffer;
  clientRandom: Buffer;
  suite: CipherSuite;
  extendedMasterSecret: boolean;
  secureRenegotiation: boolean;
}

const MAX_MESSAGE = 2048;

export class ServerHandshake {
  state: HandshakeState = "awaitKeyExchange";
  readonly serverRandom = randomBytes(32);
  private readonly transcript: Buffer[] = [];
  private readonly reassembler = new HandshakeReassembler(MAX_MESSAGE, 1);
  private nextReceiveSeq: number;
  private nextSendSeq: number;
  private lastClientFlightStart: number;
  private changeCipherSpecSeen = false;
  private master: Buffer | undefined;
  private identity: Buffer = Buffer.alloc(0);

  constructor(
    private readonly hello: NegotiatedHello,
    private readonly host: HandshakeHost,
  ) {
    this.nextReceiveSeq = hello.messageSeq + 1;
    this.nextSendSeq = hello.messageSeq;
    this.lastClientFlightStart = hello.messageSeq;
    this.transcript.push(encodeHandshakeMessage(HandshakeType.clientHello, hello.messageSeq, hello.body));
  }

  get clientRandom(): Buffer {
    return this.hello.clientRandom;
  }

  get suite(): CipherSuite {
    return this.hello.suite;
  }

  start(): void {
    const serverHello = encodeServerHello({
      random: this.serverRandom,
      cipherSuite: this.hello.suite.id,
      extendedMasterSecret: this.hello.extendedMasterSecret,
      secureRenegotiation: this.hello.secureRenegotiation,
    });
    const flight: FlightItem[] = [
      this.outgoing(HandshakeType.serverHello, serverHello, 0),
      this.outgoing(HandshakeType.serverHelloDone, Buffer.alloc(0), 0),
    ];
    this.host.sendFlight(flight, true);
  }

  private outgoing(msgType: number, body: Buffer, epoch: number): FlightItem {
    const messageSeq = this.nextSendSeq++;
    this.transcript.push(encodeHandshakeMessage(msgType, messageSeq, body));
    return { kind: "handshake", epoch, msgType, messageSeq, body };
  }

  private expected(): { msgType: number; epoch: number } | undefined {
    if (this.state === "awaitKeyExchange") return { msgType: HandshakeType.clientKeyExchange, epoch: 0 };
    if (this.state === "awaitFinished") return { msgType: HandshakeType.finished, epoch: 1 };
    return undefined;
  }

  onChangeCipherSpec(): void {
    if (this.state === "awaitPsk" || this.state === "awaitFinished") this.changeCipherSpecSeen = true;
  }

  onFragment(fragment: HandshakeFragment, epoch: number): void {
    if (this.state === "failed") return;
    if (fragment.messageSeq < this.nextReceiveSeq) {
      const answered = this.state === "awaitKeyExchange" || this.state === "done";
      if (fragment.messageSeq >= this.lastClientFlightStart && answered) {
        this.host.retransmitFlight();
      }
      return;
    }
    const expected = this.expected();
    // Only the one message this state waits for is held; anything else is dropped, not fatal, so a
    // spoofed epoch 0 datagram cannot end someone else's handshake.
    if (!expected || fragment.messageSeq !== this.nextReceiveSeq) return;
    if (fragment.msgType !== expected.msgType || epoch !== expected.epoch) return;
    if (expected.msgType === HandshakeType.finished && !this.changeCipherSpecSeen) return;
    if (!this.reassembler.add(fragment)) return;
    const message = this.reassembler.take(this.nextReceiveSeq);
    if (!message) return;
    this.nextReceiveSeq++;
    if (message.msgType === HandshakeType.clientKeyExchange)
      this.onClientKeyExchange(message.messageSeq, message.body);
    else this.onFinished(message.messageSeq, message.body);
  }

  private onClientKeyExchange(messageSeq: number, body: Buffer): void {
    let identity: Buffer;
    try {
      identity = parsePskClientKeyExchange(body);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.fail(AlertDescription.decodeError, "malformed ClientKeyExchange");
      return;
    }
    this.identity = Buffer.from(identity);
    this.transcript.push(encodeHandshakeMessage(HandshakeType.clientKeyExchange, messageSeq, body));
    this.lastClientFlightStart = messageSeq;
    this.host.cancelRetransmission();
    this.state = "awaitPsk";
    const sessionHash = this.hello.extendedMasterSecret
      ? createHash("sha256").update(Buffer.concat(this.transcript)).digest()
      : undefined;
    this.host.lookupPsk(this.identity).then(
      (psk) => this.onPsk(psk, sessionHash),
      () => this.fail(AlertDescription.internalError, "PSK lookup failed"),
    );
  }

  private onPsk(psk: Buffer | undefined, sessionHash: Buffer | undefined): void {
    if (this.state !== "awaitPsk") return;
    // An unknown identity gets a key that matches nothing: the handshake fails at Finished, the
    // same way as a wrong key, so a peer cannot tell which identities exist.
    const premaster = pskPremasterSecret(psk ?? randomBytes(16));
    const master = sessionHash
      ? extendedMasterSecret(premaster, sessionHash)
      : masterSecret(premaster, this.hello.clientRandom, this.serverRandom);
    this.master = master;
    const block = keyBlock(
      master,
      this.hello.clientRandom,
      this.serverRandom,
      keyBlockLength(this.hello.suite),
    );
    this.state = "awaitFinished";
    this.host.installKeys(protectionsFromKeyBlock(this.hello.suite, block));
  }

  private onFinished(messageSeq: number, body: Buffer): void {
    const master = this.master;
    if (!master) return;
    let verifyData: Buffer;
    try {
      verifyData = parseFinished(body);
    } catch {
      this.fail(AlertDescription.decodeError, "malformed Finished");
      return;
    }
    const expected = finishedVerifyData(master, "client", Buffer.concat(this.transcript));
    if (!timingSafeEqual(expected, verifyData)) {
      this.fail(AlertDescription.decryptError, "Finished does not verify");
      return;
    }
    this.transcript.push(encodeHandshakeMessage(HandshakeType.finished, messageSeq, body));
    const serverVerify = finishedVerifyData(master, "server", Buffer.concat(this.transcript));
    const flight: FlightItem[] = [
      { kind: "changeCipherSpec" },
      this.outgoing(HandshakeType.finished, serverVerify, 1),
    ];
    this.state = "done";
    this.transcript.length = 0;
    this.master = undefined;
    this.host.sendFlight(flight, false);
    this.host.complete(this.identity);
  }

  fail(alert: number, reason: string): void {
    if (this.state === "failed" || this.state === "done") return;
    this.state = "failed";
    this.host.cancelRetransmission();
    this.host.fail(alert, reason);
  }
}
