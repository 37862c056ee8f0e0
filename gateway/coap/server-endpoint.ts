/**
 * The server side of CoAP (RFC 7252) for one secured association (a DTLS session): parses
 * requests with coap-packet, answers a confirmable request with a piggybacked response in its ACK
 * and a non-confirmable one with a NON of its own, echoes tokens, and de-duplicates by message id
 * (§4.5): a retransmitted request gets the very same response bytes, and the handler runs once.
 * Knows nothing of what the requests mean: a handler answers them.
 */
import { randomInt } from "node:crypto";
import { generate, type NamedOption, type ParsedPacket, parse } from "coap-packet";
import {
  type CoapMethod,
  ContentFormat,
  decodeUint,
  EXCHANGE_LIFETIME_MS,
  encodeUint,
  METHOD_BY_CODE,
  MessageType,
  OPTION_NUMBER_BY_NAME,
  OptionNumber,
  ResponseCode,
} from "./constants.ts";

export interface CoapRequest {
  method: CoapMethod;
  /** Uri-Path segments, decoded (no percent-encoding on the wire in CoAP). */
  path: string[];
  query: string[];
  payload: Buffer;
  contentFormat: number | undefined;
  accept: number | undefined;
  confirmable: boolean;
  token: Buffer;
  messageId: number;
}

export interface CoapResponse {
  /** "c.dd", e.g. "2.05" (see ResponseCode). */
  code: string;
  payload?: Buffer;
  contentFormat?: number;
  /** Seconds the answer stays fresh (Max-Age), e.g. with 5.03. */
  maxAge?: number;
}

export type CoapHandler = (request: CoapRequest) => Promise<CoapResponse> | CoapResponse;

export interface CoapServerEndpointOptions {
  /** How long a request's message id is remembered (default EXCHANGE_LIFETIME, 247 s). */
  exchangeLifetimeMs?: number;
  /** At most this many remembered exchanges per endpoint (oldest forgotten first; default 64). */
  maxExchanges?: number;
  /** Largest response datagram (default 1152: fits a 1280-byte IPv6 MTU after DTLS overhead). */
  maxMessageSize?: number;
  now?: () => number;
  /** A handler that threw (answered 5.00). */
  onHandlerError?: (error: unknown, request: CoapRequest) => void;
}

export interface CoapEndpointStats {
  requests: number;
  duplicates: number;
  rejected: number;
}

type Exchange = { expiresAt: number; response: Buffer | undefined };

/** JSON as a CoAP response body (Content-Format 50). */
export function jsonResponse(code: string, body: unknown): CoapResponse {
  return { code, payload: Buffer.from(JSON.stringify(body)), contentFormat: ContentFormat.json };
}

/** A diagnostic payload (§5.5.2) in plain text. */
export function textResponse(code: string, text: string): CoapResponse {
  return { code, payload: Buffer.from(text), contentFormat: ContentFormat.textPlain };
}

export class CoapServerEndpoint {
  private readonly exchanges = new Map<number, Exchange>();
  private readonly lifetimeMs: number;
  private readonly maxExchanges: number;
  private readonly maxMessageSize: number;
  private readonly now: () => number;
  private nextMessageId = randomInt(0x10000);
  private closed = false;
  readonly stats: CoapEndpointStats = { requests: 0, duplicates: 0, rejected: 0 };

  constructor(
    private readonly send: (datagram: Buffer) => void,
    private readonly handler: CoapHandler,
    private readonly options: CoapServerEndpointOptions = {},
  ) {
    this.lifetimeMs = options.exchangeLifetimeMs ?? EXCHANGE_LIFETIME_MS;
    this.maxExchanges = options.maxExchanges ?? 64;
    this.maxMessageSize = options.maxMessageSize ?? 1152;
    this.now = options.now ?? Date.now;
  }

  /** Stops answering (responses still in the handler are dropped). */
  close(): void {
    this.closed = true;
    this.exchanges.clear();
  }

  /** One datagram from the peer; never throws. */
  receive(datagram: Buffer): void {
    if (this.closed || datagram.length < 4) return;
    const first = datagram[0] ?? 0;
    if (first >> 6 !== 1) return; // §3: unknown versions are silently ignored
    const type = (first >> 4) & 0x3;
    const messageId = datagram.readUInt16BE(2);
    let packet: ParsedPacket;
    try {
      if ((first & 0x0f) > 8) throw new Error("token lengths 9-15 are reserved (§3)");
      packet = parse(datagram);
    } catch {
      // §4.2 / §4.3: a message with a format error is rejected (RST) if confirmable, else ignored.
      this.rejectMessage(type, messageId);
      return;
    }
    if (packet.ack || packet.reset) return; // this endpoint sends no confirmable messages
    if (packet.code === "0.00") {
      this.rejectMessage(type, messageId); // a CoAP ping (empty CON) is answered with RST
      return;
    }
    const method = METHOD_BY_CODE[packet.code];
    if (!method) {
      this.rejectMessage(type, messageId); // a response or an unknown request code
      return;
    }
    this.forgetExpired();
    const seen = this.exchanges.get(messageId);
    if (seen) {
      this.stats.duplicates++;
      // Answered: the same bytes again. Still in the handler: the response will go out once.
      if (seen.response) this.transmit(seen.response);
      return;
    }
    this.remember(messageId);
    this.stats.requests++;
    void this.answer(packet, method).then((response) => {
      const exchange = this.exchanges.get(messageId);
      if (exchange) exchange.response = response;
      this.transmit(response);
    });
  }

  private async answer(packet: ParsedPacket, method: CoapMethod): Promise<Buffer> {
    const confirmable = packet.confirmable;
    const request: CoapRequest = {
      method,
      path: [],
      query: [],
      payload: packet.payload,
      contentFormat: undefined,
      accept: undefined,
      confirmable,
      token: packet.token,
      messageId: packet.messageId,
    };
    let response: CoapResponse;
    const unsupported = readOptions(packet, request);
    if (unsupported !== undefined) {
      response = textResponse(ResponseCode.badOption, `unsupported critical option ${unsupported}`);
    } else {
      try {
        response = await this.handler(request);
      } catch (error) {
        this.options.onHandlerError?.(error, request);
        response = { code: ResponseCode.internalServerError };
      }
    }
    return this.encodeResponse(packet, response);
  }

  private encodeResponse(packet: ParsedPacket, response: CoapResponse): Buffer {
    const options: NamedOption[] = [];
    if (response.contentFormat !== undefined)
      options.push({ name: "Content-Format", value: encodeUint(response.contentFormat) });
    if (response.maxAge !== undefined) options.push({ name: "Max-Age", value: encodeUint(response.maxAge) });
    const header = packet.confirmable
      ? { ack: true, messageId: packet.messageId }
      : { confirmable: false, messageId: this.newMessageId() };
    try {
      return generate(
        {
          ...header,
          token: packet.token,
          code: response.code,
          options,
          payload: response.payload ?? Buffer.alloc(0),
        },
        this.maxMessageSize,
      );
    } catch {
      // Too large (or a bad code from the handler): a bare 5.00 always fits.
      return generate({ ...header, token: packet.token, code: ResponseCode.internalServerError });
    }
  }

  private rejectMessage(type: number, messageId: number): void {
    if (type !== MessageType.confirmable) return;
    this.stats.rejected++;
    this.transmit(generate({ reset: true, confirmable: false, messageId, code: "0.00" }));
  }

  private transmit(datagram: Buffer): void {
    if (this.closed) return;
    try {
      this.send(datagram);
    } catch {
      // The session went away: nothing to answer to.
    }
  }

  private newMessageId(): number {
    this.nextMessageId = (this.nextMessageId + 1) & 0xffff;
    return this.nextMessageId;
  }

  private remember(messageId: number): void {
    if (this.exchanges.size >= this.maxExchanges) {
      const oldest = this.exchanges.keys().next();
      if (!oldest.done) this.exchanges.delete(oldest.value);
    }
    this.exchanges.set(messageId, { expiresAt: this.now() + this.lifetimeMs, response: undefined });
  }

  /** Exchanges are kept in arrival order with one lifetime: the expired ones are at the front. */
  private forgetExpired(): void {
    const now = this.now();
    for (const [id, exchange] of this.exchanges) {
      if (exchange.expiresAt > now) return;
      this.exchanges.delete(id);
    }
  }
}

/**
 * Fills the request's path, query and formats; returns the number of a critical option this
 * endpoint does not handle (§5.4.1: answered 4.02), if any.
 */
function readOptions(packet: ParsedPacket, request: CoapRequest): number | undefined {
  for (const option of packet.options) {
    const number = typeof option.name === "number" ? option.name : OPTION_NUMBER_BY_NAME[option.name];
    switch (number) {
      case OptionNumber.uriPath:
        request.path.push(option.value.toString("utf8"));
        break;
      case OptionNumber.uriQuery:
        request.query.push(option.value.toString("utf8"));
        break;
      case OptionNumber.contentFormat:
        request.contentFormat = decodeUint(option.value);
        break;
      case OptionNumber.accept:
        request.accept = decodeUint(option.value);
        break;
      case OptionNumber.uriHost:
      case OptionNumber.uriPort:
        break; // one virtual server per endpoint
      case OptionNumber.block2:
        // Block2 in a request: a size hint for the answer's first block; the answers fit in one.
        if (decodeUint(option.value) >> 4 !== 0) return number;
        break;
      default:
        // Odd numbers are critical (§5.4.6); unknown elective options are ignored.
        if (number === undefined || number % 2 === 1) return number ?? -1;
    }
  }
  return undefined;
}
