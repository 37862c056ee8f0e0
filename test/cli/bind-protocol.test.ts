import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  bindingTopics,
  deviceInfo,
  infoReply,
  isBindingToken,
  maskToken,
  matchRequest,
  newBindingToken,
  notifyDelayMs,
  notifyPayload,
  parseCloudReply,
  parseHostPort,
  parseLanMessage,
  requestId,
  resetRequest,
} from "#cli/simulators/bind-protocol.ts";

/** The seeds' example values (001: the notify and the GET answer as the SDK logs them). */
const SEED_NOTIFY =
  '{"id":"7","version":"1.0","method":"device.info.notify","params":{"awssVer":{"smartconfig":"2.0","zconfig":"2.0","router":"2.0","ap":"2.0","softap":"2.0"},"productKey":"a1GQc8iJOWI","deviceName":"gateway_test01","mac":"B0:F8:93:15:BF:21","ip":"10.0.0.59","cipherType":4,"token":"4786F0F6E1CC7BF86017FD4D1429EE4F","remainTime":43360,"type":0}}';
const SEED_ANSWER =
  '{"id":123,"code":200,"data":{"awssVer":{"smartconfig":"2.0","zconfig":"2.0","router":"2.0","ap":"2.0","softap":"2.0"},"productKey":"a1GQc8iJOWI","deviceName":"gateway_test01","mac":"B0:F8:93:15:BF:21","ip":"10.0.0.59","cipherType":4,"token":"B52C577E55DE6B3CAF5B0C882410D8BF","remainTime":40738,"type":0}}';

const seedInfo = (token: string, remainTimeMs: number) =>
  deviceInfo({
    productKey: "a1GQc8iJOWI",
    deviceName: "gateway_test01",
    mac: "B0:F8:93:15:BF:21",
    ip: "10.0.0.59",
    token,
    remainTimeMs,
  });

describe("binding wire formats (seeds 001/003)", () => {
  it("a token is 16 random bytes as 32 uppercase hex characters", () => {
    const bytes = Buffer.from("4786f0f6e1cc7bf86017fd4d1429ee4f", "hex");
    assert.equal(
      newBindingToken(() => bytes),
      "4786F0F6E1CC7BF86017FD4D1429EE4F",
    );
    const made = new Set(Array.from({ length: 100 }, () => newBindingToken()));
    assert.equal(made.size, 100);
    for (const token of made) assert.ok(isBindingToken(token), token);
    for (const bad of [
      "4786f0f6e1cc7bf86017fd4d1429ee4f",
      "4786F0F6",
      `${"A".repeat(32)}0`,
      "G".repeat(32),
    ]) {
      assert.equal(isBindingToken(bad), false, bad);
    }
    assert.equal(maskToken("4786F0F6E1CC7BF86017FD4D1429EE4F"), "4786…EE4F");
  });

  it("the report is the seed's `report token:` line byte for byte", () => {
    assert.equal(
      matchRequest("0", "4786F0F6E1CC7BF86017FD4D1429EE4F"),
      '{"id":"0","version":"1.0","method":"thing.awss.enrollee.match","params":{"token":"4786F0F6E1CC7BF86017FD4D1429EE4F"}}',
    );
    assert.equal(resetRequest("3"), '{"id":"3","version":"1.0","method":"thing.reset","params":{}}');
  });

  it("the notify and the GET answer are the seed's payloads byte for byte", () => {
    assert.equal(notifyPayload(7, seedInfo("4786F0F6E1CC7BF86017FD4D1429EE4F", 43360.7)), SEED_NOTIFY);
    assert.equal(infoReply(123, seedInfo("B52C577E55DE6B3CAF5B0C882410D8BF", 40738)), SEED_ANSWER);
    assert.equal(seedInfo("B52C577E55DE6B3CAF5B0C882410D8BF", -5).remainTime, 0);
  });

  it("a phone reads both back; anything else is not a device", () => {
    assert.deepEqual(parseLanMessage(SEED_NOTIFY), {
      id: "7",
      device: {
        productKey: "a1GQc8iJOWI",
        deviceName: "gateway_test01",
        token: "4786F0F6E1CC7BF86017FD4D1429EE4F",
        remainTime: 43360,
        ip: "10.0.0.59",
        mac: "B0:F8:93:15:BF:21",
      },
    });
    assert.equal(parseLanMessage(SEED_ANSWER)?.device.token, "B52C577E55DE6B3CAF5B0C882410D8BF");
    assert.equal(parseLanMessage(SEED_ANSWER.replace('"code":200', '"code":404')), undefined);
    assert.equal(parseLanMessage(SEED_NOTIFY.replace("4786F0F6", "nothex!!")), undefined);
    assert.equal(parseLanMessage("not json"), undefined);
  });

  it("topics: Alibaba's for secret-born devices, the thing's topic space for certificate devices", () => {
    assert.deepEqual(bindingTopics({ kind: "aliyun", productKey: "pk1", deviceName: "dn1" }), {
      match: "/sys/pk1/dn1/thing/awss/enrollee/match",
      matchReply: "/sys/pk1/dn1/thing/awss/enrollee/match_reply",
      reset: "/sys/pk1/dn1/thing/reset",
      resetReply: "/sys/pk1/dn1/thing/reset_reply",
    });
    assert.deepEqual(bindingTopics({ kind: "thing", productKey: "pk1", thingName: "SN-1" }), {
      match: "things/SN-1/sys/thing/awss/enrollee/match",
      matchReply: "things/SN-1/sys/thing/awss/enrollee/match_reply",
      reset: "things/SN-1/sys/thing/reset",
      resetReply: "things/SN-1/sys/thing/reset_reply",
    });
  });

  it("replies and request ids are read as the SDK reads them", () => {
    assert.deepEqual(parseCloudReply('{"id":"0","code":200,"data":{}}'), { id: "0", code: 200 });
    assert.deepEqual(parseCloudReply('{"id":4,"code":403,"message":"no"}'), {
      id: "4",
      code: 403,
      message: "no",
    });
    assert.equal(parseCloudReply('{"code":200}'), undefined);
    assert.equal(requestId('{"id":"9","method":"device.info.get"}'), "9");
    assert.equal(requestId(Buffer.alloc(0)), undefined);
    assert.equal(requestId("{bad"), undefined);
  });

  it("30 notifies with the pause growing by 100 ms fit in the token's 45 s", () => {
    const total = Array.from({ length: 30 }, (_, i) => notifyDelayMs(i)).reduce((a, b) => a + b, 0);
    assert.equal(total, 43_500);
    assert.ok(total < 45_000);
  });

  it("host:port is checked and names the flag", () => {
    assert.deepEqual(parseHostPort("127.0.0.1:5683", "--device"), { host: "127.0.0.1", port: 5683 });
    assert.throws(() => parseHostPort("127.0.0.1", "--device"), /--device must be host:port/);
    assert.throws(() => parseHostPort("h:70000", "--notify-to"), /--notify-to must be host:port/);
  });
});
