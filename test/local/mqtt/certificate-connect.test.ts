import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DescribeEndpointCommand,
  UpdateCACertificateCommand,
  UpdateCertificateCommand,
} from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";
import {
  closed,
  connectDevice,
  connectOrFail,
  type DeviceCredentials,
  endClient,
  nextMessage,
  subscribe,
} from "./mqtt-device.ts";
import { OpensslDeviceCa } from "./openssl-device-ca.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type Vended = {
  credentials: DeviceCredentials;
  certificateId: string;
  rootCaPem: string;
  mqttEndpoint: string;
};

/**
 * Certificates the endpoint already knows: vended ones connect at once; revoked, inactive, absent
 * or foreign certificates are refused; a second connection with the same client id takes over.
 */
describe("MQTT endpoint: certificates AWS IoT already knows, and foreign ones", () => {
  let stack: Stack;
  let dir: string;
  let secretFor: (serial: string) => string;
  const clients: MqttClient[] = [];
  const serials = ["SN-V-0001", "SN-V-0002", "SN-V-0003", "SN-V-0004"];

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-mqtt-certs-"));
    ({ secretFor } = await seedProduct(stack.services, { productKey: "mqtt-vend", name: "MQTT" }, serials));
  });
  after(async () => {
    for (const client of clients) await endClient(client);
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What a device does: key + CSR with openssl, a signed call to the vending API. */
  const vend = async (serial: string): Promise<Vended> => {
    const { keyPem, csrPem } = opensslCsr(serial);
    const response = await requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: "mqtt-vend",
      secret: secretFor(serial),
      keyMode: "csr",
      csr: csrPem,
    });
    assert.equal(response.status, 201, JSON.stringify(response.body));
    const body = response.body as Record<string, string>;
    return {
      credentials: { keyPem, certPem: body.certificatePem ?? "" },
      certificateId: body.certificateId ?? "",
      rootCaPem: body.rootCaPem ?? "",
      mqttEndpoint: body.mqttEndpoint ?? "",
    };
  };
  const connect = (clientId: string, credentials?: DeviceCredentials) =>
    connectDevice({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId,
      ...(credentials ? { credentials } : {}),
    });
  const revoke = (certificateId: string, newStatus: "REVOKED" | "INACTIVE") =>
    stack.iotClient.send(new UpdateCertificateCommand({ certificateId, newStatus }));

  it("announces the port it really listens on (DescribeEndpoint, endpoints)", async () => {
    const { endpointAddress } = await stack.iotClient.send(
      new DescribeEndpointCommand({ endpointType: "iot:Data-ATS" }),
    );
    assert.equal(endpointAddress, `localhost:${stack.mqtt.port}`);
    assert.equal(stack.endpoints.mqtt, `mqtts://localhost:${stack.mqtt.port}`);
    assert.notEqual(stack.mqtt.port, 0);
  });

  it("accepts a vended certificate at once, with the root CA and endpoint the vending API returned", async () => {
    const vended = await vend("SN-V-0001");
    assert.equal(vended.mqttEndpoint, `localhost:${stack.mqtt.port}`);
    const client = await connectOrFail({
      url: `mqtts://${vended.mqttEndpoint}`,
      caPem: vended.rootCaPem,
      clientId: "SN-V-0001",
      credentials: vended.credentials,
    });
    clients.push(client);
    assert.deepEqual(await subscribe(client, "$aws/things/SN-V-0001/shadow/update/accepted"), [1]);
    const echo = nextMessage(client, "$aws/things/SN-V-0001/shadow/update/accepted");
    client.publish("$aws/things/SN-V-0001/shadow/update/accepted", "{}", { qos: 1 });
    assert.equal((await echo)?.payload, "{}");
  });

  it("refuses a client without a certificate, without CONNACK", async () => {
    const result = await connect("SN-V-0001");
    assert.equal(result.connected, false);
    assert.equal(result.connected === false && result.closedWithoutConnack, true);
  });

  it("refuses REVOKED and INACTIVE certificates, and stops a connected device whose certificate is revoked", async () => {
    const connectedOne = await vend("SN-V-0002");
    const client = await connectOrFail({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId: "SN-V-0002",
      credentials: connectedOne.credentials,
    });
    await revoke(connectedOne.certificateId, "REVOKED");
    const gone = closed(client);
    client.publish("things/SN-V-0002/telemetry", "{}", { qos: 0 });
    assert.equal(await gone, true, "the next publish is refused and the client disconnected");
    assert.equal((await connect("SN-V-0002", connectedOne.credentials)).connected, false);

    const inactive = await vend("SN-V-0003");
    await revoke(inactive.certificateId, "INACTIVE");
    assert.equal((await connect("SN-V-0003", inactive.credentials)).connected, false);
  });

  it("hands a client id over to the newest connection (one session per client id)", async () => {
    const vended = await vend("SN-V-0004");
    const options = {
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId: "SN-V-0004",
      credentials: vended.credentials,
    };
    const first = await connectOrFail(options);
    const firstClosed = closed(first);
    const second = await connectOrFail(options);
    clients.push(first, second);
    assert.equal(await firstClosed, true);
    assert.equal(second.connected, true);
  });

  it("refuses certificates of an unregistered CA, and of a registered CA that is INACTIVE", async () => {
    const foreign = OpensslDeviceCa.create(join(dir, "foreign"), "Unregistered CA").issueDevice("SN-V-0001");
    const result = await connect("SN-V-0001", { keyPem: foreign.keyPem, certPem: foreign.chainPem });
    assert.equal(result.connected, false);

    const ca = OpensslDeviceCa.create(join(dir, "inactive"), "Inactive CA");
    await ca.registerWith(stack.iotClient);
    await stack.iotClient.send(
      new UpdateCACertificateCommand({ certificateId: ca.caCertificateId, newStatus: "INACTIVE" }),
    );
    const device = ca.issueDevice("SN-V-0001");
    assert.equal(
      (await connect("SN-V-0001", { keyPem: device.keyPem, certPem: device.chainPem })).connected,
      false,
    );
    const registered = stack.iot.state
      .listCertificates()
      .filter((c) => c.caCertificateId === ca.caCertificateId);
    assert.deepEqual(registered, [], "nothing auto-registered from an INACTIVE CA");
  });
});
