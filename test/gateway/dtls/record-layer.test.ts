import assert from "node:assert/strict";
import { test } from "node:test";
import { ContentType, DTLS_1_2, HandshakeType } from "#gateway/dtls/constants.ts";
import {
  encodeHandshakeMessage,
  fragmentHandshakeMessage,
  parseHandshakeFragments,
} from "#gateway/dtls/handshake-fragment.ts";
import { HandshakeReassembler } from "#gateway/dtls/handshake-reassembler.ts";
import { encodeRecord, parseDatagram } from "#gateway/dtls/record.ts";
import { ReplayWindow } from "#gateway/dtls/replay-window.ts";

test("records: several per datagram round trip; a truncated tail is dropped", () => {
  const a = {
    type: ContentType.handshake,
    version: DTLS_1_2,
    epoch: 0,
    sequence: 7,
    fragment: Buffer.from("one"),
  };
  const b = {
    type: ContentType.applicationData,
    version: DTLS_1_2,
    epoch: 1,
    sequence: 2 ** 40,
    fragment: Buffer.from("two"),
  };
  const datagram = Buffer.concat([encodeRecord(a), encodeRecord(b)]);
  assert.deepEqual(parseDatagram(datagram), [a, b]);
  assert.deepEqual(parseDatagram(datagram.subarray(0, datagram.length - 1)), [a]);
  assert.deepEqual(parseDatagram(Buffer.alloc(5)), []);
});

test("records: unknown content types and non-DTLS versions are skipped", () => {
  const good = {
    type: ContentType.alert,
    version: DTLS_1_2,
    epoch: 0,
    sequence: 1,
    fragment: Buffer.of(1, 0),
  };
  const tls = { ...good, version: 0x0303 };
  const unknown = { ...good, type: 99 };
  assert.deepEqual(
    parseDatagram(Buffer.concat([encodeRecord(tls), encodeRecord(unknown), encodeRecord(good)])),
    [good],
  );
});

test("handshake fragments: split, shuffled, duplicated and overlapping pieces reassemble", () => {
  const body = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
  const pieces = fragmentHandshakeMessage(HandshakeType.clientKeyExchange, 4, body, 12 + 37);
  assert.ok(pieces.length > 5);
  const fragments = pieces.flatMap((p) => parseHandshakeFragments(p));
  const shuffled = [...fragments.slice(3), ...fragments.slice(0, 3), fragments[1]!];
  const r = new HandshakeReassembler(1024, 2);
  for (const f of shuffled.slice(0, -2)) {
    assert.ok(r.add(f));
    assert.equal(r.take(4), undefined);
  }
  for (const f of shuffled.slice(-2)) r.add(f);
  assert.deepEqual(r.take(4)?.body, body);
});

test("handshake fragments: inconsistent, oversized and too many messages are refused", () => {
  const r = new HandshakeReassembler(100, 1);
  const [f] = parseHandshakeFragments(encodeHandshakeMessage(HandshakeType.finished, 1, Buffer.alloc(12)));
  assert.ok(f);
  assert.equal(r.add({ ...f, length: 101 }), false);
  assert.ok(r.add({ ...f, body: f.body.subarray(0, 4) }));
  assert.equal(r.add({ ...f, msgType: HandshakeType.clientKeyExchange }), false, "other type, same seq");
  assert.equal(r.add({ ...f, messageSeq: 2 }), false, "second message beyond the bound");
  assert.throws(
    () => parseHandshakeFragments(Buffer.from("0100000a000000000500000b", "hex")),
    /fragment beyond/,
  );
});

test("replay window: fresh, duplicate, old and far-ahead sequence numbers", () => {
  const w = new ReplayWindow();
  for (const s of [0, 1, 5, 3]) {
    assert.ok(w.isFresh(s));
    w.accept(s);
  }
  assert.equal(w.isFresh(3), false);
  assert.equal(w.isFresh(5), false);
  assert.ok(w.isFresh(4));
  w.accept(100);
  assert.equal(w.isFresh(36), false, "left of a 64-entry window");
  assert.ok(w.isFresh(37));
  w.accept(37);
  assert.equal(w.isFresh(37), false);
  w.accept(2 ** 47);
  assert.equal(w.isFresh(100), false);
  assert.ok(w.isFresh(2 ** 47 - 1));
});
