/**
 * A CoAP client over one secured association (the CLI, tests and the bench): confirmable requests
 * are retransmitted with RFC 7252 §4.2's exponential back-off until their ACK; responses are
 * matched by token (piggybacked in the ACK, or separate: a confirmable separate response is
 * acknowledged). Encoding and decoding with coap-packet.
 */
import { randomBytes, randomInt } from "node:crypto";
import { generate, type NamedOption, type ParsedPacket, parse } from "coap-packet";
import {
  ACK_RANDOM_FACTOR,
  ACK_TIMEOUT_MS,
  type CoapMethod,
  decodeUint,
  encodeUint,
  MAX_RETRANSMIT,
} from "./constants.ts";

export interface CoapClientRequest {
  method: CoapMethod;
  /** e.g. `/topic/sys/pk/dk/thing/measurepoint/post`; each segment becomes a Uri-Path option. */
  path: string;
  query?: string[];
  payload?: Buffer | string;
  contentFormat?: number;
  accept?: number;
  /** CON (default) or NON. */
  confirmable?: boolean;
  /** Give up after this long (default: §4.8.2 MAX_TRANSMIT_WAIT, 93 s). */
  timeoutMs?: number;
}

export interface CoapClientResponse {
  code: string;
  payload: Buffer;
  contentFormat: number | undefined;
  messageId: number;
  token: Buffer;
  /** How many times the request was sent. */
  transmissions: number;
}

export interface CoapClientOptions {
  ackTimeoutMs?: number;
  maxRetransmit?: number;
}

type Pending = {
  token: Buffer;
  messageId: number;
  datagram: Buffer;
  acknowledged: boolean;
  transmissions: number;
  timer: NodeJS.Timeout | undefined;
  deadline: NodeJS.Timeout;
  resolve: (response: CoapClientResponse) => void;
  reject: (error: Error) => void;
};

export class CoapClient {
  private readonly pending = new Map<string, Pending>();
  private nextMessageId = randomInt(0x10000);

  constructor(
    private readonly send: (datagram: Buffer) => void,
    private readonly options: CoapClientOptions = {},
  ) {}

  request(request: CoapClientRequest): Promise<CoapClientResponse> {
    const token = randomBytes(4);
    const messageId = this.newMessageId();
    const options: NamedOption[] = [];
    for (const segment of request.path.split("/").filter((s) => s.length > 0))
      options.push({ name: "Uri-Path", value: Buffer.from(segment) });
    if (request.contentFormat !== undefined)
      options.push({ name: "Content-Format", value: encodeUint(request.contentFormat) });
    for (const q of request.query ?? []) options.push({ name: "Uri-Query", value: Buffer.from(q) });
    if (request.accept !== undefined) options.push({ name: "Accept", value: encodeUint(request.accept) });
    const confirmable = request.confirmable ?? true;
    const datagram = generate({
      code: request.method,
      confirmable,
      messageId,
      token,
      options,
      payload:
        typeof request.payload === "string"
          ? Buffer.from(request.payload)
          : (request.payload ?? Buffer.alloc(0)),
    });
    return new Promise((resolve, reject) => {
      const key = token.toString("hex");
      const finish = () => {
        clearTimeout(entry.timer);
        clearTimeout(entry.deadline);
        this.pending.delete(key);
      };
      const entry: Pending = {
        token,
        messageId,
        datagram,
        acknowledged: !confirmable,
        transmissions: 0,
        timer: undefined,
        deadline: setTimeout(() => {
          finish();
          reject(new Error(`no CoAP response within ${request.timeoutMs ?? 93_000} ms`));
        }, request.timeoutMs ?? 93_000),
        resolve: (response) => {
          finish();
          resolve(response);
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      };
      this.pending.set(key, entry);
      this.transmit(entry);
      if (confirmable) this.scheduleRetransmission(entry, this.initialTimeout(), 0);
    });
  }

  /** A datagram from the server. */
  receive(datagram: Buffer): void {
    let packet: ParsedPacket;
    try {
      packet = parse(datagram);
    } catch {
      return;
    }
    if (packet.reset) {
      for (const entry of this.pending.values())
        if (entry.messageId === packet.messageId)
          entry.reject(new Error("the server reset the request (RST)"));
      return;
    }
    if (packet.code === "0.00") {
      // An empty ACK: the response will come separately.
      if (packet.ack)
        for (const entry of this.pending.values())
          if (entry.messageId === packet.messageId) {
            entry.acknowledged = true;
            clearTimeout(entry.timer);
          }
      return;
    }
    if (packet.confirmable) {
      // A separate response: acknowledge it (§5.2.2).
      this.send(generate({ ack: true, messageId: packet.messageId, code: "0.00" }));
    }
    const entry = this.pending.get(packet.token.toString("hex"));
    if (!entry) return;
    if (packet.ack && packet.messageId !== entry.messageId) return;
    const format = packet.options.find((o) => o.name === "Content-Format");
    entry.resolve({
      code: packet.code,
      payload: packet.payload,
      contentFormat: format ? decodeUint(format.value) : undefined,
      messageId: packet.messageId,
      token: packet.token,
      transmissions: entry.transmissions,
    });
  }

  /** Rejects every request still waiting. */
  close(): void {
    for (const entry of [...this.pending.values()]) entry.reject(new Error("the CoAP client closed"));
  }

  private initialTimeout(): number {
    const ack = this.options.ackTimeoutMs ?? ACK_TIMEOUT_MS;
    return ack + Math.random() * ack * (ACK_RANDOM_FACTOR - 1);
  }

  private scheduleRetransmission(entry: Pending, timeoutMs: number, count: number): void {
    entry.timer = setTimeout(() => {
      if (entry.acknowledged) return;
      if (count >= (this.options.maxRetransmit ?? MAX_RETRANSMIT)) {
        entry.reject(new Error(`no ACK after ${count + 1} transmissions`));
        return;
      }
      this.transmit(entry);
      this.scheduleRetransmission(entry, timeoutMs * 2, count + 1);
    }, timeoutMs);
  }

  private transmit(entry: Pending): void {
    entry.transmissions++;
    this.send(entry.datagram);
  }

  private newMessageId(): number {
    this.nextMessageId = (this.nextMessageId + 1) & 0xffff;
    return this.nextMessageId;
  }
}
