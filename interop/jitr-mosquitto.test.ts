import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DescribeCertificateCommand, DescribeThingCommand } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { readCertificate } from "#core/pki/certificate-reader.ts";
import { endClient, nextMessage } from "#test/local/mqtt/mqtt-device.ts";
import { connectObserver } from "#test/local/mqtt/observer.ts";
import { type OpensslDevice, OpensslDeviceCa } from "#test/local/mqtt/openssl-device-ca.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

/**
 * Interoperability: the JITR walkthrough of seed 004 with the Eclipse Mosquitto clients as the
 * device (OpenSSL TLS, the CA chain in `--cert`, the local root CA as `--cafile`), against the
 * local stack. Run with `node scripts/run-tests.mjs interop`; needs `mosquitto-clients`.
 */
const missing = spawnSync("mosquitto_pub", ["--help"]).error !== undefined;
const skip = missing
  ? "mosquitto_pub not found: install mosquitto-clients (apt-get install mosquitto-clients)"
  : false;

type Run = { code: number; stdout: string; stderr: string };
type Stack = Awaited<ReturnType<typeof startTestStack>>;

/** Runs a mosquitto client; resolves with its exit code and output (never rejects). */
function run(command: string, args: string[], timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const certificateIdOf = (pem: string) => readCertificate(pem).id;

describe("JITR with mosquitto_pub / mosquitto_sub as the device", { skip }, () => {
  let stack: Stack;
  let dir: string;
  let ca: OpensslDeviceCa;
  let rootCaFile: string;
  let observer: MqttClient;

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-interop-"));
    rootCaFile = join(dir, "root.cert");
    writeFileSync(rootCaFile, stack.rootCaPem);
    ca = OpensslDeviceCa.create(join(dir, "ca"), "Interop device CA");
    await ca.registerWith(stack.iotClient);
    await seedProduct(
      stack.services,
      { productKey: "interop", name: "Mosquitto interop", trustedCaIds: [ca.caCertificateId] },
      ["SN-MQ-0001"],
    );
    observer = await connectObserver(stack, "interop");
  });
  after(async () => {
    await endClient(observer);
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The connection options of seed 004's mosquitto_pub line, for one device. */
  const tls = (device: OpensslDevice, clientId = device.serial) => [
    ...["--cafile", rootCaFile, "--cert", device.chainFile, "--key", device.keyFile],
    ...["-h", "localhost", "-p", String(stack.mqtt.port), "-i", clientId, "--tls-version", "tlsv1.2"],
  ];
  const pub = (device: OpensslDevice, topic: string, message: string) =>
    run("mosquitto_pub", [...tls(device), "-t", topic, "-m", message, "-q", "1", "-d"]);
  const statusOf = async (certificateId: string) =>
    (await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }))).certificateDescription
      ?.status;

  it("first connection dropped and registered, the JITR handler activates it, then publish and subscribe work", async () => {
    const device = ca.issueDevice("SN-MQ-0001");
    const certificateId = certificateIdOf(device.certPem);
    const eventTopic = `$aws/events/certificates/registered/${ca.caCertificateId}`;
    const event = nextMessage(observer, eventTopic);

    const first = await pub(device, "things/SN-MQ-0001/hello", "Hello");
    assert.notEqual(first.code, 0, `the first mosquitto_pub must fail:\n${first.stdout}${first.stderr}`);
    // Past TLS (the endpoint's certificate verified), CONNECT sent, then dropped without CONNACK.
    assert.match(first.stdout + first.stderr, /sending CONNECT/);
    assert.doesNotMatch(first.stdout + first.stderr, /received CONNACK/);
    assert.match(first.stdout + first.stderr, /connection was lost/i);
    const published = JSON.parse((await event)?.payload ?? "null") as Record<string, unknown>;
    assert.equal(published.certificateId, certificateId);
    await stack.mqtt.rules.settled();
    assert.equal(await statusOf(certificateId), "ACTIVE");
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: "SN-MQ-0001" }));
    assert.equal(thing.attributes?.productKey, "interop");

    // mosquitto_sub as the device waits for one command; the observer sends it until it arrives.
    const commandTopic = "things/SN-MQ-0001/commands";
    const sub = run("mosquitto_sub", [...tls(device), "-t", commandTopic, "-q", "1", "-C", "1", "-W", "10"]);
    let done = false;
    void sub.then(() => {
      done = true;
    });
    while (!done) {
      observer.publish(commandTopic, '{"command":"blink"}', { qos: 1 });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const received = await sub;
    assert.equal(received.code, 0, received.stderr);
    assert.equal(received.stdout.trim(), '{"command":"blink"}');

    const telemetry = nextMessage(observer, "things/SN-MQ-0001/telemetry");
    const ok = await pub(device, "things/SN-MQ-0001/telemetry", '{"temperature":21}');
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal((await telemetry)?.payload, '{"temperature":21}');

    // Another thing's topic: the endpoint disconnects the client, the QoS 1 publish is never acked.
    const leaked = nextMessage(observer, "things/SN-MQ-0002/telemetry", 500);
    const refused = await pub(device, "things/SN-MQ-0002/telemetry", "spoofed");
    assert.notEqual(refused.code, 0, refused.stdout + refused.stderr);
    assert.match(refused.stdout + refused.stderr, /received CONNACK \(0\)[\s\S]*connection was lost/i);
    assert.equal(await leaked, undefined);
  });

  it("an unregistered serial: the certificate is revoked and every retry refused", async () => {
    const device = ca.issueDevice("SN-MQ-UNKNOWN");
    const certificateId = certificateIdOf(device.certPem);
    assert.notEqual((await pub(device, "things/SN-MQ-UNKNOWN/hello", "Hello")).code, 0);
    await stack.mqtt.rules.settled();
    assert.equal(await statusOf(certificateId), "REVOKED");
    assert.notEqual((await pub(device, "things/SN-MQ-UNKNOWN/hello", "Hello")).code, 0);
    assert.equal(await statusOf(certificateId), "REVOKED");
  });
});
