// gateway/coap's server endpoint with messages built and read by coap-packet (no DTLS underneath).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generate, parse } from "coap-packet";
import { type CoapRequest, CoapServerEndpoint, jsonResponse, ResponseCode } from "#gateway/coap/index.ts";

function harness(
  handler: (r: CoapRequest) => Promise<{ code: string; payload?: Buffer }> | { code: string },
) {
  const sent: Buffer[] = [];
  const requests: CoapRequest[] = [];
  let now = 0;
  const endpoint = new CoapServerEndpoint(
    (d) => sent.push(d),
    (r) => {
      requests.push(r);
      return handler(r);
    },
    { now: () => now, exchangeLifetimeMs: 1000, maxExchanges: 4 },
  );
  const flush = () => new Promise((r) => setImmediate(r));
  return { sent, requests, endpoint, flush, advance: (ms: number) => (now += ms) };
}

const get = (messageId: number, token: Buffer, path: string[], confirmable = true) =>
  generate({
    code: "GET",
    confirmable,
    messageId,
    token,
    options: path.map((p) => ({ name: "Uri-Path" as const, value: Buffer.from(p) })),
  });

describe("CoapServerEndpoint", () => {
  it("CON request: piggybacked response in the ACK, same message id and token, path and payload read", async () => {
    const h = harness((r) => jsonResponse(ResponseCode.content, { path: r.path }));
    h.endpoint.receive(get(0x1234, Buffer.from("abcd"), ["topic", "a b", "ü"]));
    await h.flush();
    assert.equal(h.sent.length, 1);
    const answer = parse(h.sent[0]!);
    assert.equal(answer.ack, true);
    assert.equal(answer.code, "2.05");
    assert.equal(answer.messageId, 0x1234);
    assert.deepEqual(answer.token, Buffer.from("abcd"));
    assert.deepEqual(JSON.parse(answer.payload.toString()), { path: ["topic", "a b", "ü"] });
    assert.deepEqual(answer.options.find((o) => o.name === "Content-Format")?.value, Buffer.of(50));
  });

  it("a retransmitted CON gets the same response bytes and the handler runs once", async () => {
    let calls = 0;
    const h = harness(() => ({ code: ResponseCode.changed, payload: Buffer.from(String(++calls)) }));
    const request = get(7, Buffer.from("t1"), ["x"]);
    h.endpoint.receive(request);
    h.endpoint.receive(request); // while the handler runs: nothing extra goes out
    await h.flush();
    h.endpoint.receive(request);
    await h.flush();
    assert.equal(calls, 1);
    assert.equal(h.sent.length, 2);
    assert.deepEqual(h.sent[0], h.sent[1]);
    assert.equal(h.endpoint.stats.duplicates, 2);
  });

  it("after EXCHANGE_LIFETIME a message id is new again; the cache is bounded", async () => {
    let calls = 0;
    const h = harness(() => ({ code: `2.0${(++calls % 5) + 1}` }));
    h.endpoint.receive(get(1, Buffer.alloc(0), []));
    await h.flush();
    h.advance(1001);
    h.endpoint.receive(get(1, Buffer.alloc(0), []));
    await h.flush();
    assert.equal(calls, 2);
    for (let id = 10; id < 20; id++) h.endpoint.receive(get(id, Buffer.alloc(0), []));
    await h.flush();
    assert.equal(calls, 12); // at most 4 remembered: none of these was a duplicate
  });

  it("NON request: a NON response with a new message id and the same token", async () => {
    const h = harness(() => ({ code: ResponseCode.content, payload: Buffer.from("x") }));
    h.endpoint.receive(get(99, Buffer.from("tok"), ["a"], false));
    await h.flush();
    const answer = parse(h.sent[0]!);
    assert.equal(answer.confirmable, false);
    assert.equal(answer.ack, false);
    assert.notEqual(answer.messageId, 99);
    assert.deepEqual(answer.token, Buffer.from("tok"));
  });

  it("a CoAP ping (empty CON) and a malformed CON get RST; a malformed NON, ACKs and other versions nothing", async () => {
    const h = harness(() => ({ code: ResponseCode.content }));
    h.endpoint.receive(generate({ code: "0.00", confirmable: true, messageId: 5 }));
    // CON with token length 9 (reserved): a format error.
    h.endpoint.receive(Buffer.from([0x49, 0x01, 0x00, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    h.endpoint.receive(Buffer.from([0x59, 0x01, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    h.endpoint.receive(generate({ code: "0.00", ack: true, messageId: 8 }));
    h.endpoint.receive(Buffer.from([0x80, 0x01, 0x00, 0x09])); // version 2
    h.endpoint.receive(Buffer.from([0x40]));
    await h.flush();
    assert.deepEqual(
      h.sent.map((d) => {
        const p = parse(d);
        return [p.reset, p.messageId];
      }),
      [
        [true, 5],
        [true, 6],
      ],
    );
    assert.equal(h.requests.length, 0);
  });

  it("an unknown critical option is answered 4.02; an unknown elective one is ignored", async () => {
    const h = harness(() => ({ code: ResponseCode.content }));
    h.endpoint.receive(
      generate({ code: "GET", messageId: 1, options: [{ name: "If-Match", value: Buffer.from("x") }] }),
    );
    h.endpoint.receive(
      generate({ code: "GET", messageId: 2, options: [{ name: "Size1", value: Buffer.of(1) }] }),
    );
    await h.flush();
    assert.deepEqual(
      h.sent.map((d) => parse(d).code),
      ["4.02", "2.05"],
    );
    assert.equal(h.requests.length, 1);
  });

  it("a handler that throws answers 5.00; a response too large answers 5.00", async () => {
    const errors: unknown[] = [];
    const sent: Buffer[] = [];
    const endpoint = new CoapServerEndpoint(
      (d) => sent.push(d),
      (r) => {
        if (r.path[0] === "big") return { code: "2.05", payload: Buffer.alloc(5000) };
        throw new Error("boom");
      },
      { onHandlerError: (e) => errors.push(e) },
    );
    endpoint.receive(get(1, Buffer.alloc(0), ["x"]));
    endpoint.receive(get(2, Buffer.alloc(0), ["big"]));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      sent.map((d) => parse(d).code),
      ["5.00", "5.00"],
    );
    assert.equal(errors.length, 1);
  });

  it("4,000 random datagrams: no throw, answers only RSTs or responses", async () => {
    const h = harness(() => ({ code: ResponseCode.content }));
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 4000; i++) {
      const d = Buffer.alloc(rnd() % 40);
      for (let j = 0; j < d.length; j++) d[j] = rnd() & 0xff;
      if (d.length > 0 && i % 2 === 0) d[0] = 0x40 | (d[0]! & 0x3f); // version 1 half the time
      h.endpoint.receive(d);
    }
    await h.flush();
    for (const d of h.sent) {
      const p = parse(d);
      assert.ok(p.reset || p.ack || !p.confirmable);
    }
  });
});
