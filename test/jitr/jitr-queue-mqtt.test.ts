import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DescribeCertificateCommand } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { readCertificate } from "#core/pki/certificate-reader.ts";
import { RULE_TARGETS } from "#templates/catalog.ts";
import { connectDevice, connectOrFail } from "#test/local/mqtt/mqtt-device.ts";
import type { OpensslDevice, OpensslDeviceCa } from "#test/local/mqtt/openssl-device-ca.ts";
import { certificateDevice, type DeviceCaStack, startDeviceCaStack } from "#test/support/device-ca.ts";
import { seedProduct } from "#test/support/local-stack.ts";

/** Polls until `check` holds (no time is asserted; the test's own timeout bounds it). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10));
}

/**
 * JITR end to end through the queue on the local stack: a real MQTT client over TLS with a
 * certificate of a registered CA, the MQTT endpoint publishing the registration event, the rule
 * engine's queue (sqs action + event source semantics) and the real consumer. A device that keeps
 * reconnecting while its registration runs publishes the event each time; the repeats are dropped
 * by the ledger before any AWS IoT call.
 */
describe("JITR through the queue over MQTT (local stack)", () => {
  let fixture: DeviceCaStack;
  let stack: DeviceCaStack["stack"];
  let ca: OpensslDeviceCa;
  const clients: MqttClient[] = [];

  before(async () => {
    fixture = await startDeviceCaStack({
      caName: "JITR queue MQTT test CA",
      tmpPrefix: "onramp-jitr-queue-",
    });
    ({ stack, ca } = fixture);
    await ca.registerWith(stack.iotClient);
    await seedProduct(
      stack.services,
      { productKey: "jitr-queue-mqtt", name: "JITR queue over MQTT", trustedCaIds: [ca.caCertificateId] },
      ["QM-0001", "QM-0002", "QM-0003"],
    );
  });
  after(() => fixture?.stop(clients));

  const connect = (device: OpensslDevice) => connectDevice(certificateDevice(stack, device));
  const certificateIdOf = (device: OpensslDevice) => readCertificate(device.certPem).id;
  const deliveriesOf = (certificateId: string) =>
    stack.mqtt.rules.recentDeliveries.filter(
      (d) =>
        d.target === RULE_TARGETS.jitrRegistration &&
        (d.payload as { certificateId?: string } | undefined)?.certificateId === certificateId,
    );
  const resultsOf = (certificateId: string) =>
    deliveriesOf(certificateId)
      .filter((d) => d.outcome === "delivered")
      .map((d) => (d.result as { outcome: string }).outcome);
  const describes = () => stack.iot.faults.calls("DescribeCertificate");

  it("a device's first connection is refused, its event goes through the queue, the retry connects", async () => {
    const device = ca.issueDevice("QM-0001");
    const certificateId = certificateIdOf(device);
    const first = await connect(device);
    assert.equal(first.connected, false);
    await stack.mqtt.rules.settled();
    assert.deepEqual(
      deliveriesOf(certificateId).map((d) => d.outcome),
      ["queued", "delivered"],
      "sent to the queue by the rule, then consumed",
    );
    assert.deepEqual(resultsOf(certificateId), ["activated"]);
    clients.push(await connectOrFail(certificateDevice(stack, device, "QM-0001")));
  });

  it("reconnects while the registration runs are collapsed into it: no further DescribeCertificate", {
    timeout: 60_000,
  }, async () => {
    // What one registration costs, from a device that connects once.
    const reference = ca.issueDevice("QM-0002");
    const beforeReference = describes();
    assert.equal((await connect(reference)).connected, false);
    await stack.mqtt.rules.settled();
    const perRegistration = describes() - beforeReference;
    assert.deepEqual(resultsOf(certificateIdOf(reference)), ["activated"]);

    const device = ca.issueDevice("QM-0003");
    const certificateId = certificateIdOf(device);
    // Hold the registration between two AWS IoT calls (DescribeThing runs, its answer waits).
    const held = stack.iot.faults.hold("DescribeThing");
    const beforeDevice = describes();
    assert.equal((await connect(device)).connected, false);
    await held.reached;
    const retrying = () => deliveriesOf(certificateId).filter((d) => d.outcome === "retrying").length;
    for (let i = 0; i < 3; i++) {
      assert.equal((await connect(device)).connected, false, "still pending: refused");
      // Another consumer receives the repeat while the first registration is held, and returns it
      // to the queue until that one is done.
      await until(() => retrying() === i + 1);
    }
    held.release();
    await stack.mqtt.rules.settled();
    // Back from the queue after the registration settled: dropped, no AWS IoT call.
    assert.deepEqual(resultsOf(certificateId).sort(), ["activated", "duplicate", "duplicate", "duplicate"]);
    assert.equal(
      describes() - beforeDevice,
      perRegistration,
      "the three repeats cost no DescribeCertificate",
    );
    const status = await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }));
    assert.equal(status.certificateDescription?.status, "ACTIVE");
    clients.push(await connectOrFail(certificateDevice(stack, device, "QM-0003")));
    const queue = stack.mqtt.rules.queues.get(RULE_TARGETS.jitrRegistration);
    assert.equal(queue?.depth, 0);
    assert.deepEqual(queue?.deadLetters, []);
  });
});
