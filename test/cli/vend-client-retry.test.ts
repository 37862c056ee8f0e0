import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { vendWithRetries } from "#cli/device/vend-client.ts";

/**
 * The device side of Retry-After against a real HTTP server that answers from a script: waits at
 * least Retry-After and at most 1 s more (injected sleep and random), signs each attempt anew,
 * stops after maxAttempts, does not retry a 4xx that is not about load.
 */
describe("vendWithRetries: honours Retry-After", () => {
  let script: Array<{ status: number; retryAfter?: string }> = [];
  const nonces: string[] = [];
  let url = "";
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      nonces.push((JSON.parse(body) as { nonce: string }).nonce);
      const next = script.shift() ?? { status: 201 };
      res.writeHead(next.status, {
        "content-type": "application/json",
        ...(next.retryAfter ? { "retry-after": next.retryAfter } : {}),
      });
      res.end(JSON.stringify(next.status < 300 ? { certificateId: "c" } : { error: { code: "X" } }));
    });
  });
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const call = () => ({
    apiUrl: url,
    serialNumber: "s-1",
    productKey: "p-1",
    secret: "secret",
    keyMode: "server" as const,
  });

  it("429 Retry-After 2, 503 Retry-After 1, then 201: waits 2–3 s and 1–2 s, fresh nonce each time", async () => {
    script = [
      { status: 429, retryAfter: "2" },
      { status: 503, retryAfter: "1" },
    ];
    nonces.length = 0;
    for (const random of [0, 0.999]) {
      script = [
        { status: 429, retryAfter: "2" },
        { status: 503, retryAfter: "1" },
      ];
      const waits: number[] = [];
      const res = await vendWithRetries(call(), {
        sleep: async (ms) => {
          waits.push(ms);
        },
        random: () => random,
      });
      assert.equal(res.status, 201);
      assert.equal(res.attempts, 3);
      assert.ok(waits[0]! >= 2000 && waits[0]! < 3000, `${waits[0]}`);
      assert.ok(waits[1]! >= 1000 && waits[1]! < 2000, `${waits[1]}`);
    }
    assert.equal(new Set(nonces).size, nonces.length);
  });

  it("bounded: after maxAttempts the last 429 is returned; a 403 is not retried", async () => {
    script = Array.from({ length: 5 }, () => ({ status: 429, retryAfter: "1" }));
    const res = await vendWithRetries(call(), { maxAttempts: 3, sleep: async () => {} });
    assert.equal(res.status, 429);
    assert.equal(res.attempts, 3);
    script = [{ status: 403 }];
    const denied = await vendWithRetries(call(), { sleep: async () => {} });
    assert.equal(denied.status, 403);
    assert.equal(denied.attempts, 1);
  });

  it("a Retry-After beyond maxWaitSeconds is not waited for", async () => {
    script = [{ status: 429, retryAfter: "900" }];
    const res = await vendWithRetries(call(), {
      maxWaitSeconds: 60,
      sleep: async () => assert.fail("slept"),
    });
    assert.equal(res.status, 429);
    assert.equal(res.attempts, 1);
  });
});
