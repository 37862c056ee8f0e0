// `onramp device coap` against the local stack's CoAP gateway: handshake, activation, POST.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";
import { runOnramp } from "#test/support/run-cli.ts";

describe("onramp device coap", () => {
  let stack: Awaited<ReturnType<typeof startTestStack>>;
  let meterProductSecret: string;
  let pumpSecret: string;
  const at = () => ["--host", "127.0.0.1", "--port", String(stack.coap.port)];

  before(async () => {
    stack = await startTestStack();
    ({ productSecret: meterProductSecret } = await seedProduct(
      stack.services,
      {
        productKey: "enosMeter",
        name: "Meter",
        authMode: "product-secret",
        mqttAuth: { scheme: "enos", dynamicActivation: true },
      },
      ["meter-01"],
    ));
    const pump = await seedProduct(
      stack.services,
      { productKey: "enosPump", name: "Pump", mqttAuth: { scheme: "enos", dynamicActivation: false } },
      ["pump-01"],
    );
    pumpSecret = pump.secretFor("pump-01");
  });
  after(() => stack.stop());

  it("--activate: SecureMode 3 handshake, activation, SecureMode 2 handshake with the secret, POST (--json)", async () => {
    const run = await runOnramp(
      "device",
      "coap",
      "--identity",
      "enosMeter,meter-01,3,300",
      "--secret",
      meterProductSecret,
      "--activate",
      "--post",
      "/topic/sys/enosMeter/meter-01/thing/measurepoint/post",
      "--payload",
      '{"params":{"measurepoints":{"kwh":12.5}}}',
      "--json",
      ...at(),
    );
    assert.equal(run.exitCode, 0, run.stdout);
    const out = JSON.parse(run.stdout);
    assert.equal(out.ok, true);
    assert.deepEqual(
      out.steps.map((s: { step: string; ok: boolean }) => [s.step, s.ok]),
      [
        ["handshake", true],
        ["activate", true],
        ["handshake", true],
        ["post", true],
      ],
    );
    assert.equal(out.steps[2].identity, "enosMeter,meter-01,2,300");
    assert.equal(out.steps[3].code, "2.04");
    assert.equal(typeof out.deviceSecret, "string");
    assert.equal(stack.coap.gateway.stats().published, 1);
  });

  it("prints each step as text; a wrong secret fails at the handshake with exit code 1", async () => {
    const ok = await runOnramp(
      "device",
      "coap",
      "--identity",
      "enosPump,pump-01,2,60",
      "--secret",
      pumpSecret,
      "--post",
      "/topic/sys/enosPump/pump-01/thing/measurepoint/post",
      ...at(),
    );
    assert.equal(ok.exitCode, 0, String(ok.error));
    assert.match(
      ok.stdout,
      /^ok {4}handshake .*coapClient=coap-client-openssl -u 'enosPump,pump-01,2,60' -k /m,
    );
    assert.match(ok.stdout, /^ok {4}post .*code=2\.04/m);
    const wrong = await runOnramp(
      "device",
      "coap",
      "--identity",
      "enosPump,pump-01,2,60",
      "--secret",
      "wrong-secret",
      ...at(),
    );
    assert.equal(wrong.exitCode, 1);
    assert.match(wrong.stdout, /^FAIL {2}handshake/m);
    assert.match(String(wrong.error), /handshake failed/);
  });

  it("refuses --activate with a SecureMode 2 identity and a malformed identity", async () => {
    const a = await runOnramp(
      "device",
      "coap",
      "--identity",
      "enosPump,pump-01,2,60",
      "--secret",
      "x",
      "--activate",
    );
    assert.match(String(a.error), /SecureMode 3/);
    const b = await runOnramp("device", "coap", "--identity", "enosPump,pump-01", "--secret", "x");
    assert.match(String(b.error), /--identity/);
  });
});
