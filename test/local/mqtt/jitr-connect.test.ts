import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  DescribeCertificateCommand,
  DescribeThingCommand,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
} from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { readCertificate } from "#core/pki/certificate-reader.ts";
import { localAccountId } from "#local/local-aws.ts";
import { DEVICE_POLICY_NAME } from "#templates/catalog.ts";
import { certificateDevice, type DeviceCaStack, startDeviceCaStack } from "#test/support/device-ca.ts";
import { seedProduct } from "#test/support/local-stack.ts";
import { closed, connectDevice, connectOrFail, nextMessage, subscribe } from "./mqtt-device.ts";
import { connectObserver } from "./observer.ts";
import type { OpensslDevice, OpensslDeviceCa } from "./openssl-device-ca.ts";
import { logsCarryKeyMaterial, recordingLogger } from "./recording-logger.ts";

const certificateIdOf = (pem: string) => readCertificate(pem).id;

/**
 * Just-in-time registration through the local MQTT endpoint, as seed 004 does it on AWS: a CA
 * made with openssl and registered with a verification certificate, device certificates signed
 * by it and presented with the CA (`cat device.crt rootCA.pem`), the first connection refused
 * while the registration event reaches the real JITR handler through the local rule engine.
 */
describe("JITR over MQTT (local endpoint, rule engine, JITR handler)", () => {
  let fixture: DeviceCaStack;
  let stack: DeviceCaStack["stack"];
  let ca: OpensslDeviceCa;
  let observer: MqttClient;
  const logger = recordingLogger();
  const clients: MqttClient[] = [];

  before(async () => {
    fixture = await startDeviceCaStack({
      caName: "JITR MQTT test CA",
      tmpPrefix: "onramp-jitr-mqtt-",
      stack: { dynamoFaultInjection: true, logger },
    });
    ({ stack, ca } = fixture);
    await ca.registerWith(stack.iotClient);
    await seedProduct(
      stack.services,
      { productKey: "jitr-mqtt", name: "JITR over MQTT", trustedCaIds: [ca.caCertificateId] },
      ["SN-M-0001", "SN-M-0002", "SN-M-0003"],
    );
    observer = await connectObserver(stack, "jitr");
  });
  after(() => fixture?.stop([...clients, observer]));

  const eventTopic = () => `$aws/events/certificates/registered/${ca.caCertificateId}`;
  const connect = (device: OpensslDevice, clientId = device.serial) =>
    connectDevice(certificateDevice(stack, device, clientId));
  const statusOf = async (certificateId: string) =>
    (await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }))).certificateDescription
      ?.status;
  const lastDelivery = (certificateId: string) =>
    stack.mqtt.rules.recentDeliveries.findLast(
      (d) => (d.payload as { certificateId?: string } | undefined)?.certificateId === certificateId,
    );

  it("refuses the first connection, the JITR handler activates the certificate, the retry connects", async () => {
    const device = ca.issueDevice("SN-M-0001");
    const certificateId = certificateIdOf(device.certPem);
    const event = nextMessage(observer, eventTopic());

    const first = await connect(device);
    assert.equal(first.connected, false);
    assert.equal(first.connected === false && first.closedWithoutConnack, true, "closed without CONNACK");

    const published = JSON.parse((await event)?.payload ?? "null") as Record<string, unknown>;
    assert.deepEqual(Object.keys(published).sort(), [
      "awsAccountId",
      "caCertificateId",
      "certificateId",
      "certificateRegistrationTimestamp",
      "certificateStatus",
      "timestamp",
    ]);
    assert.equal(published.certificateId, certificateId);
    assert.equal(published.caCertificateId, ca.caCertificateId);
    assert.equal(published.certificateStatus, "PENDING_ACTIVATION");
    assert.equal(published.awsAccountId, localAccountId);
    assert.equal(typeof published.timestamp, "number");

    await stack.mqtt.rules.settled();
    const delivery = lastDelivery(certificateId);
    assert.equal(delivery?.ruleName, "onramp_jitr_registration");
    assert.deepEqual(delivery?.result, { outcome: "activated" });
    assert.equal(await statusOf(certificateId), "ACTIVE");
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: "SN-M-0001" }));
    assert.equal(thing.attributes?.productKey, "jitr-mqtt");
    const arn = thing.thingArn?.replace(/thing\/.*/, `cert/${certificateId}`);
    const principals = await stack.iotClient.send(new ListThingPrincipalsCommand({ thingName: "SN-M-0001" }));
    assert.deepEqual(principals.principals, [arn]);
    const policies = await stack.iotClient.send(new ListAttachedPoliciesCommand({ target: arn }));
    assert.deepEqual(
      policies.policies?.map((p) => p.policyName),
      [DEVICE_POLICY_NAME],
    );

    const client = await connectOrFail(certificateDevice(stack, device, "SN-M-0001"));
    clients.push(client);
    assert.deepEqual(await subscribe(client, "things/SN-M-0001/commands"), [1]);
    assert.deepEqual(await subscribe(client, "things/SN-M-0002/commands"), [128], "another thing's topic");

    const seen = nextMessage(observer, "things/SN-M-0001/telemetry");
    client.publish("things/SN-M-0001/telemetry", '{"temperature":21}', { qos: 1 });
    assert.equal((await seen)?.payload, '{"temperature":21}');

    // Publishing to another thing's topic: AWS IoT disconnects the client; nothing is delivered.
    const leaked = nextMessage(observer, "things/SN-M-0002/telemetry", 500);
    const gone = closed(client);
    client.publish("things/SN-M-0002/telemetry", '{"spoofed":true}', { qos: 0 });
    assert.equal(await gone, true, "disconnected after an unauthorized publish");
    assert.equal(await leaked, undefined);
  });

  it("refuses a client id that is not the certificate's thing", async () => {
    const device = ca.issueDevice("SN-M-0002");
    assert.equal((await connect(device)).connected, false);
    await stack.mqtt.rules.settled();
    const certificateId = certificateIdOf(device.certPem);
    assert.equal(await statusOf(certificateId), "ACTIVE");
    assert.equal((await connect(device, "SN-M-0001")).connected, false, "another existing thing");
    assert.equal((await connect(device, "not-a-thing")).connected, false, "no such thing");
    const client = await connectOrFail(certificateDevice(stack, device, "SN-M-0002"));
    clients.push(client);
  });

  it("revokes the certificate of a serial the registry does not know; the retry is refused", async () => {
    const device = ca.issueDevice("SN-UNKNOWN-1");
    const certificateId = certificateIdOf(device.certPem);
    assert.equal((await connect(device)).connected, false);
    await stack.mqtt.rules.settled();
    assert.deepEqual(lastDelivery(certificateId)?.result, { outcome: "rejected", reason: "unknown-device" });
    assert.equal(await statusOf(certificateId), "REVOKED");

    const retry = await connect(device);
    assert.equal(retry.connected, false);
    const decision = logger.entries.findLast(
      (e) => e.message === "mqtt: connect" && e.certificateId === certificateId,
    );
    assert.equal(decision?.reason, "certificate-revoked");
  });

  it("keeps a failed delivery as a dead letter; the pending certificate's next connection sends the event again", async () => {
    const device = ca.issueDevice("SN-M-0003");
    const certificateId = certificateIdOf(device.certPem);
    const deadBefore = stack.mqtt.rules.deadLetters.length;
    stack.dynamoFaults?.inject({ operation: "GetItem", times: 1000 });
    try {
      assert.equal((await connect(device)).connected, false);
      await stack.mqtt.rules.settled();
    } finally {
      stack.dynamoFaults?.clear();
    }
    const dead = stack.mqtt.rules.deadLetters.slice(deadBefore);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]?.ruleName, "onramp_jitr_registration");
    assert.equal((dead[0]?.payload as { certificateId?: string } | undefined)?.certificateId, certificateId);
    assert.equal(await statusOf(certificateId), "PENDING_ACTIVATION");

    const again = nextMessage(observer, eventTopic());
    assert.equal((await connect(device)).connected, false, "still pending: refused");
    const republished = JSON.parse((await again)?.payload ?? "null") as Record<string, unknown>;
    assert.equal(republished.certificateId, certificateId);
    assert.equal(republished.certificateStatus, "PENDING_ACTIVATION");
    await stack.mqtt.rules.settled();
    assert.deepEqual(lastDelivery(certificateId)?.result, { outcome: "activated" });
    const client = await connectOrFail(certificateDevice(stack, device, "SN-M-0003"));
    clients.push(client);
  });

  it("logs every connect decision without key material", () => {
    const decisions = logger.entries.filter((e) => e.message === "mqtt: connect");
    assert.ok(decisions.length >= 10);
    for (const entry of decisions) {
      assert.equal(typeof entry.clientId, "string");
      assert.ok(entry.outcome === "accepted" || entry.outcome === "refused");
    }
    assert.ok(
      decisions.some((e) => e.reason === "jitr-registered" && e.caCertificateId === ca.caCertificateId),
    );
    assert.ok(decisions.some((e) => e.outcome === "accepted" && e.thingName === "SN-M-0001"));
    assert.equal(logsCarryKeyMaterial(logger.entries), false);
  });
});
