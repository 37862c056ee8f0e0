import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { connectOrFail, nextMessage, subscribe } from "#test/local/mqtt/mqtt-device.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";
import { runOnramp } from "#test/support/run-cli.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

/**
 * `onramp registry rotate` against the local stack: the request reaches a connected device on its
 * `.../certificates/rotate/required` topic through the data plane's Publish (the stack's AWS
 * endpoint hands it to the MQTT endpoint), and the report says who was asked and who is rotating.
 */
describe("onramp registry rotate", () => {
  let stack: Stack;
  let dir: string;
  let endpoints: string;
  let product: Awaited<ReturnType<typeof seedProduct>>;

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-rotate-"));
    endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    product = await seedProduct(stack.services, { productKey: "rr-product", name: "Rotate" }, [
      "RR-1",
      "RR-2",
    ]);
  });
  after(async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const provision = async (serial: string) => {
    const { csrPem, keyPem } = opensslCsr(serial);
    const res = await requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: "rr-product",
      secret: product.secretFor(serial),
      keyMode: "csr",
      csr: csrPem,
    });
    assert.equal(res.status, 201);
    return { keyPem, certPem: (res.body as { certificatePem: string }).certificatePem };
  };

  it("asks a connected device to rotate; --expiring-within skips certificates that do not expire soon", async () => {
    const credentials = await provision("RR-1");
    await provision("RR-2");
    const client = await connectOrFail({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId: "RR-1",
      credentials,
    });
    try {
      await subscribe(client, "things/RR-1/certificates/rotate/required");
      const message = nextMessage(client, "things/RR-1/certificates/rotate/required", 10_000);
      const run = await runOnramp("registry", "rotate", "RR-1", "--json", "--endpoints", endpoints);
      assert.equal(run.error, undefined, String(run.error));
      const report = JSON.parse(run.stdout) as { devices: { serialNumber: string; state: string }[] };
      assert.deepEqual(
        report.devices.map((d) => [d.serialNumber, d.state]),
        [["RR-1", "asked"]],
      );
      const received = await message;
      assert.ok(received, "the device got the request");
      assert.equal((JSON.parse(received.payload) as { reason: string }).reason, "operator");
    } finally {
      client.end(true);
    }
    const soon = await runOnramp(
      "registry",
      "rotate",
      "--product-key",
      "rr-product",
      "--expiring-within",
      "1d",
      "--json",
      "--endpoints",
      endpoints,
    );
    const states = (JSON.parse(soon.stdout) as { devices: { state: string }[] }).devices.map((d) => d.state);
    assert.deepEqual(states, ["skipped", "skipped"], "a new certificate does not expire within a day");
    const listed = await runOnramp(
      "registry",
      "list",
      "--product-key",
      "rr-product",
      "--expiring-within",
      "20000d",
      "--json",
      "--endpoints",
      endpoints,
    );
    assert.equal(listed.error, undefined, String(listed.error));
    const expiring = (JSON.parse(listed.stdout) as { devices: { serialNumber: string; state: string }[] })
      .devices;
    assert.deepEqual(expiring.map((d) => [d.serialNumber, d.state]).sort(), [
      ["RR-1", "expiring"],
      ["RR-2", "expiring"],
    ]);
    const none = await runOnramp(
      "registry",
      "list",
      "--product-key",
      "rr-product",
      "--expiring-within",
      "1d",
      "--json",
      "--endpoints",
      endpoints,
    );
    assert.deepEqual((JSON.parse(none.stdout) as { devices: unknown[] }).devices, []);
    const bad = await runOnramp(
      "registry",
      "rotate",
      "--product-key",
      "rr-product",
      "--expiring-within",
      "soon",
      "--endpoints",
      endpoints,
    );
    assert.match(String(bad.error), /--expiring-within must be like 30d/);
  });
});
