// CoAP on a real DTLS session (gateway/dtls): the scripted PSK client sends coap-packet messages,
// including the same confirmable request twice (a retransmission) and a NON.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { generate, parse } from "coap-packet";
import { connectCoaps } from "#gateway/coap/coaps-client.ts";
import { ResponseCode, serveCoapOnSession } from "#gateway/coap/index.ts";
import { TLS_PSK_WITH_AES_128_CCM_8 } from "#gateway/dtls/cipher-suites.ts";
import { PskTestClient } from "#test/gateway/dtls/support/psk-test-client.ts";
import { KEY, once, startServer } from "#test/gateway/dtls/support/servers.ts";

const { server, port } = await startServer();
let calls = 0;
server.on("session", (session) =>
  serveCoapOnSession(session, (request) => {
    calls++;
    return {
      code: ResponseCode.content,
      payload: Buffer.from(`${request.method} /${request.path.join("/")} #${calls}`),
    };
  }),
);
after(() => server.close());

test("a retransmitted CON over DTLS gets the same piggybacked response; NON gets a NON", async () => {
  const client = new PskTestClient({
    port,
    identity: Buffer.from("device-1"),
    psk: KEY,
    suite: TLS_PSK_WITH_AES_128_CCM_8,
  });
  try {
    await client.connect();
    const answers: Buffer[] = [];
    client.on("data", (d) => answers.push(d));
    const answered = (count: number) =>
      once<void>((r) => {
        const poll = setInterval(() => {
          if (answers.length < count) return;
          clearInterval(poll);
          r();
        }, 10);
      });
    const request = generate({
      code: "GET",
      confirmable: true,
      messageId: 4321,
      token: Buffer.from("tk"),
      options: [{ name: "Uri-Path", value: Buffer.from("hello") }],
    });
    client.send(request);
    await answered(1);
    client.send(request);
    client.send(generate({ code: "POST", confirmable: false, messageId: 4322, token: Buffer.from("nn") }));
    await answered(3);
    const [first, again, non] = answers.map((a) => parse(a));
    assert.equal(first?.ack, true);
    assert.equal(first?.messageId, 4321);
    assert.equal(first?.payload.toString(), "GET /hello #1");
    assert.deepEqual(answers[1], answers[0]);
    assert.equal(again?.messageId, 4321);
    assert.equal(non?.confirmable, false);
    assert.equal(non?.ack, false);
    assert.deepEqual(non?.token, Buffer.from("nn"));
    assert.equal(non?.payload.toString(), "POST / #2");
    assert.equal(calls, 2);
  } finally {
    client.close();
  }
});

test("connectCoaps (node-dtls-client) with a binary key: both suites", async () => {
  for (const suite of ["TLS_PSK_WITH_AES_128_CCM_8", "TLS_PSK_WITH_AES_128_CBC_SHA256"] as const) {
    const connection = await connectCoaps({
      host: "127.0.0.1",
      port,
      identity: "device-1",
      key: KEY,
      cipherSuites: [suite],
    });
    try {
      const response = await connection.coap.request({ method: "PUT", path: "/a/b", payload: "x" });
      assert.equal(response.code, "2.05");
      assert.match(response.payload.toString(), /^PUT \/a\/b #\d+$/);
    } finally {
      await connection.close();
    }
  }
});
