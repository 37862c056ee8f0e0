import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AttachPolicyCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  type IoTClient,
} from "@aws-sdk/client-iot";
import { silentLogger } from "#core/logger.ts";
import { createIotEmulator, type IotEmulator } from "#local/iot/index.ts";
import { ConnectRateLimiter, connectRateLimiter } from "#local/iot/quotas.ts";
import { type MqttEndpoint, startMqttEndpoint } from "#local/mqtt/mqtt-endpoint.ts";
import { RuleEngine } from "#local/mqtt/rule-engine.ts";
import { iotClient } from "../iot/emulator-fixture.ts";
import { connectDevice, type DeviceCredentials, endClient } from "./mqtt-device.ts";

const CONNECT_ANY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "iot:Connect", Resource: "arn:aws:iot:*:*:client/*" }],
});

/**
 * AWS IoT Core allows 1 MQTT CONNECT per second per client id
 * (https://docs.aws.amazon.com/iot/latest/developerguide/limits-iot.html); with
 * `--aws-quotas default` the local endpoint refuses a faster CONNECT as AWS does (closed, no
 * CONNACK). The limiter's clock is the test's, so outcomes do not depend on timing.
 */
describe("MQTT endpoint: 1 CONNECT per second per client id (--aws-quotas default)", () => {
  let iot: IotEmulator;
  let client: IoTClient;
  let endpoint: MqttEndpoint;
  let device: DeviceCredentials;
  let now = 5_000_000;

  before(async () => {
    iot = await createIotEmulator();
    const { url } = await iot.listen(0);
    client = iotClient(url);
    endpoint = await startMqttEndpoint({
      iot,
      rules: new RuleEngine({ rules: [], targets: new Map(), logger: silentLogger }),
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger,
      region: "us-east-1",
      accountId: "000000000000",
      connectRate: new ConnectRateLimiter(1, () => now),
    });
    const created = await client.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
    await client.send(new CreatePolicyCommand({ policyName: "connect-any", policyDocument: CONNECT_ANY }));
    await client.send(
      new AttachPolicyCommand({ policyName: "connect-any", target: created.certificateArn! }),
    );
    device = { keyPem: created.keyPair!.PrivateKey!, certPem: created.certificatePem! };
  });
  after(async () => {
    client?.destroy();
    await endpoint?.close();
    await iot?.close();
  });

  const connect = (clientId: string) =>
    connectDevice({ url: endpoint.url, caPem: iot.rootCaPem, clientId, credentials: device });

  it("a second CONNECT within the second is refused without CONNACK; after a second it is accepted", async () => {
    const first = await connect("rate-device");
    assert.equal(first.connected, true);
    if (first.connected) await endClient(first.client);

    const second = await connect("rate-device");
    assert.deepEqual(second.connected ? "accepted" : { closedWithoutConnack: second.closedWithoutConnack }, {
      closedWithoutConnack: true,
    });

    // Another client id has its own budget.
    const other = await connect("other-device");
    assert.equal(other.connected, true);
    if (other.connected) await endClient(other.client);

    now += 1000;
    const third = await connect("rate-device");
    assert.equal(third.connected, true);
    if (third.connected) await endClient(third.client);
  });

  it("the limiter: one CONNECT per second per client id, off when the profile is off", () => {
    let t = 0;
    const limiter = new ConnectRateLimiter(1, () => t, 2);
    assert.deepEqual(
      [limiter.tryConnect("a"), limiter.tryConnect("a"), limiter.tryConnect("b"), limiter.tryConnect("c")],
      [true, false, true, true],
    );
    t += 999;
    assert.equal(limiter.tryConnect("a"), false);
    t += 1;
    assert.equal(limiter.tryConnect("a"), true);
    assert.equal(connectRateLimiter("off"), undefined);
    assert.ok(connectRateLimiter("default") instanceof ConnectRateLimiter);
  });
});
