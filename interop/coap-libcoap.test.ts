import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { disableDevice } from "#core/registry/manage-devices.ts";
import { deriveDeviceSecret } from "#credentials/derived-secret.ts";
import { enosPskKey } from "#credentials/enos-psk.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

/**
 * The EnOS CoAP gateway (npm start's wiring) against libcoap's coap-client-openssl (Debian
 * libcoap3-bin 4.3.x), a real CoAP-over-DTLS device stack. libcoap 4.3.1 takes `-k` as text and
 * has no hex form, while EnOS keys are 16 raw bytes: the key goes in as its raw bytes through
 * bash's $'\xNN' quoting. A C argument cannot hold a zero byte, so the test uses secrets whose key
 * has none (about 94% of secrets; a key with a 0x00 byte cannot be given to coap-client at all).
 */
const hasLibcoap = spawnSync("coap-client-openssl", ["-h"]).error === undefined;

type Stack = Awaited<ReturnType<typeof startTestStack>>;

/** The key as bash ANSI-C quoted raw bytes, or undefined when it has a zero byte. */
export function bashKey(key: Uint8Array): string | undefined {
  if (key.includes(0)) return undefined;
  return `$'${[...key].map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("")}'`;
}

const shellQuote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

function coapClient(
  port: number,
  identity: string,
  key: Uint8Array,
  method: "get" | "post",
  path: string,
  payload?: string,
): Promise<{ code: number | null; output: string }> {
  const quotedKey = bashKey(key);
  if (!quotedKey) throw new Error("this key has a zero byte: coap-client cannot take it");
  const command = [
    "coap-client-openssl",
    "-B 8",
    `-m ${method}`,
    `-u ${shellQuote(identity)}`,
    `-k ${quotedKey}`,
    ...(payload !== undefined ? ["-t 50", `-e ${shellQuote(payload)}`] : []),
    shellQuote(`coaps://127.0.0.1:${port}${path}`),
  ].join(" ");
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", command], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("coap-client-openssl (libcoap) against the EnOS CoAP gateway", {
  skip: hasLibcoap ? false : "coap-client-openssl not found (apt-get install libcoap3-bin)",
}, () => {
  let stack: Stack;
  let pumpSecret: string;
  let meterProductSecret: string;
  /** A serial whose derived secret's key has no zero byte. */
  let pumpSerial: string;

  before(async () => {
    stack = await startTestStack();
    const serials = Array.from({ length: 8 }, (_, i) => `pump-${i}`);
    const pump = await seedProduct(
      stack.services,
      { productKey: "enosPump", name: "Pump", mqttAuth: { scheme: "enos", dynamicActivation: false } },
      [...serials, "pump-off"],
    );
    pumpSerial = serials.find((s) => !enosPskKey(pump.secretFor(s)).includes(0)) ?? "none";
    pumpSecret = pump.secretFor(pumpSerial);
    assert.equal(deriveDeviceSecret(pump.productSecret, pumpSerial), pumpSecret);
    await disableDevice(stack.services, "pump-off");
    const meter = await seedProduct(
      stack.services,
      {
        productKey: "enosMeter",
        name: "Meter",
        authMode: "product-secret",
        mqttAuth: { scheme: "enos", dynamicActivation: true },
      },
      Array.from({ length: 8 }, (_, i) => `meter-${i}`),
    );
    meterProductSecret = meter.productSecret;
    if (enosPskKey(meterProductSecret).includes(0)) throw new Error("rerun: the product key has a zero byte");
  });
  after(() => stack.stop());

  it("SecureMode 2: POST to its own /topic/sys/... is published to the MQTT endpoint (2.04)", async () => {
    const gateway = stack.coap.gateway;
    const before = gateway.stats().published;
    const result = await coapClient(
      stack.coap.port,
      `enosPump,${pumpSerial},2,3600`,
      enosPskKey(pumpSecret),
      "post",
      `/topic/sys/enosPump/${pumpSerial}/thing/measurepoint/post`,
      '{"id":"1","params":{"measurepoints":{"flow":3}}}',
    );
    assert.equal(result.code, 0, result.output);
    assert.equal(gateway.stats().published, before + 1, result.output);
  });

  it("SecureMode 3 activation, then SecureMode 2 with the returned secret", async () => {
    let deviceKey: string | undefined;
    let deviceSecret: string | undefined;
    // The answered secret is random: take the first device whose key coap-client can take.
    for (let i = 0; i < 8 && !deviceSecret; i++) {
      const result = await coapClient(
        stack.coap.port,
        `enosMeter,meter-${i},3,3600`,
        enosPskKey(meterProductSecret),
        "get",
        `/topic/ext/session/enosMeter/meter-${i}/thing/activate/info`,
      );
      assert.equal(result.code, 0, result.output);
      const info = JSON.parse(result.output.slice(result.output.indexOf("{")));
      assert.equal(info.method, "thing.activate.info");
      assert.equal(info.params.deviceKey, `meter-${i}`);
      if (!enosPskKey(info.params.deviceSecret).includes(0)) {
        deviceKey = `meter-${i}`;
        deviceSecret = info.params.deviceSecret;
      }
    }
    assert.ok(deviceKey && deviceSecret);
    const before = stack.coap.gateway.stats().published;
    const result = await coapClient(
      stack.coap.port,
      `enosMeter,${deviceKey},2,3600`,
      enosPskKey(deviceSecret),
      "post",
      `/topic/sys/enosMeter/${deviceKey}/thing/measurepoint/post`,
      "{}",
    );
    assert.equal(result.code, 0, result.output);
    assert.equal(stack.coap.gateway.stats().published, before + 1);
  });

  it("a SecureMode 3 session asking for another path gets 4.03", async () => {
    const result = await coapClient(
      stack.coap.port,
      "enosMeter,meter-7,3,3600",
      enosPskKey(meterProductSecret),
      "post",
      "/topic/sys/enosMeter/meter-7/thing/measurepoint/post",
      "{}",
    );
    assert.match(result.output, /4\.03/);
  });

  for (const [name, identity, secret] of [
    ["a wrong key", () => `enosPump,${pumpSerial},2,3600`, () => "wrong-secret"],
    ["an unknown device", () => "enosPump,pump-99,2,3600", () => pumpSecret],
    ["a disabled device", () => "enosPump,pump-off,2,3600", () => pumpSecret],
  ] as const) {
    it(`${name}: the handshake fails, nothing is published`, async () => {
      const before = stack.coap.gateway.stats();
      const result = await coapClient(
        stack.coap.port,
        identity(),
        enosPskKey(secret()),
        "post",
        `/topic/sys/enosPump/${pumpSerial}/thing/measurepoint/post`,
        "{}",
      );
      const after = stack.coap.gateway.stats();
      assert.equal(after.published, before.published, result.output);
      assert.equal(after.sessions, before.sessions, result.output);
      assert.match(result.output, /bad record mac/, "fails exactly like a wrong key");
    });
  }
});
