import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RegisterThingCommand } from "@aws-sdk/client-iot";
import { DEFAULT_OPERATION_TPS, OperationQuotas, TokenBucket } from "#local/iot/quotas.ts";
import { iotClient, sdkError, startEmulator } from "./emulator-fixture.ts";

const TEMPLATE = JSON.stringify({
  Parameters: { ThingName: { Type: "String" } },
  Resources: { thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { Ref: "ThingName" } } } },
});
const register = (name: string) =>
  new RegisterThingCommand({ templateBody: TEMPLATE, parameters: { ThingName: name } });

/** A clock that only moves when the test says so. */
function manualClock() {
  let now = 1_000_000;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

/** What became of each of a burst of calls: "ok" or the error's name (and its HTTP status). */
async function burst(send: (i: number) => Promise<unknown>, count: number) {
  const outcomes = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      send(i).then(
        () => "ok",
        (error: Error & { $metadata?: { httpStatusCode?: number } }) =>
          `${error.name} ${error.$metadata?.httpStatusCode}`,
      ),
    ),
  );
  const tally: Record<string, number> = {};
  for (const outcome of outcomes) tally[outcome] = (tally[outcome] ?? 0) + 1;
  return tally;
}

describe("token bucket", () => {
  it("allows a burst of `rate`, then refills at `rate` per second", () => {
    const clock = manualClock();
    const bucket = new TokenBucket(10, 10, clock.now);
    const taken = Array.from({ length: 12 }, () => bucket.tryTake());
    assert.equal(taken.filter(Boolean).length, 10);
    clock.advance(100);
    assert.equal(bucket.tryTake(), true, "one token after 100 ms at 10/s");
    assert.equal(bucket.tryTake(), false);
    clock.advance(5000);
    assert.equal(
      Array.from({ length: 12 }, () => bucket.tryTake()).filter(Boolean).length,
      10,
      "never above burst",
    );
  });
});

describe("IoT emulator: AWS quotas (--aws-quotas default)", () => {
  it("a burst of 30 RegisterThing calls: 10 pass, the excess gets ThrottlingException (HTTP 400)", async () => {
    const clock = manualClock();
    const f = await startEmulator({ quotas: new OperationQuotas(DEFAULT_OPERATION_TPS, clock.now) });
    try {
      const tally = await burst((i) => f.client.send(register(`burst-${i}`)), 30);
      assert.deepEqual(tally, { ok: 10, "ThrottlingException 400": 20 });
      assert.equal(f.emulator.faults.calls("RegisterThing"), 30, "throttled calls are counted too");
      assert.equal(f.emulator.state.listThings().length, 10, "a throttled call changes nothing");
      await sdkError(f.client.send(register("still-throttled")), "ThrottlingException");
      clock.advance(1000);
      await f.client.send(register("after-a-second"));
    } finally {
      await f.stop();
    }
  });

  it("the SDK's standard retry (maxAttempts 3) gets through once the bucket refills", async () => {
    const clock = manualClock();
    const f = await startEmulator({ quotas: new OperationQuotas(DEFAULT_OPERATION_TPS, clock.now) });
    const retrying = iotClient(f.url, 3);
    // Time passes between the SDK's attempts: each retry finds the clock 1 s later.
    let attempts = 0;
    const advanceClock =
      <A, R>(next: (args: A) => Promise<R>) =>
      async (args: A): Promise<R> => {
        attempts += 1;
        if (attempts > 1) clock.advance(1000);
        return next(args);
      };
    retrying.middlewareStack.addRelativeTo(advanceClock, {
      relation: "after",
      toMiddleware: "retryMiddleware",
      name: "advanceClockPerAttempt",
    });
    try {
      for (let i = 0; i < 10; i++) await f.client.send(register(`drain-${i}`));
      await sdkError(f.client.send(register("no-retry")), "ThrottlingException");
      const answer = await retrying.send(register("with-retry"));
      assert.ok(answer.resourceArns?.thing);
      assert.equal(answer.$metadata.attempts, 2, "the first attempt was throttled, the retry passed");
    } finally {
      retrying.destroy();
      await f.stop();
    }
  });

  it("is off by default: the same burst all passes", async () => {
    const f = await startEmulator();
    try {
      assert.deepEqual(await burst((i) => f.client.send(register(`free-${i}`)), 30), { ok: 30 });
    } finally {
      await f.stop();
    }
  });

  it("quotas: 'default' uses AWS's table with the real clock", async () => {
    const f = await startEmulator({ quotas: "default" });
    try {
      const tally = await burst((i) => f.client.send(register(`real-${i}`)), 30);
      assert.ok((tally["ThrottlingException 400"] ?? 0) > 0, JSON.stringify(tally));
    } finally {
      await f.stop();
    }
  });
});
