import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CreateProvisioningTemplateCommand,
  DescribeCACertificateCommand,
  DescribeCertificateCommand,
  DescribeThingCommand,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
} from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { readCertificate } from "#core/pki/certificate-reader.ts";
import { DEVICE_POLICY_NAME, loadProvisioningTemplate } from "#templates/catalog.ts";
import { startTestStack } from "#test/support/local-stack.ts";
import { onramp } from "#test/support/run-cli.ts";
import { connectDevice, connectOrFail, endClient, nextMessage, subscribe } from "./mqtt-device.ts";
import { type OpensslDevice, OpensslDeviceCa } from "./openssl-device-ca.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

const certificateIdOf = (pem: string) => readCertificate(pem).id;

/**
 * Just-in-time provisioning through the local MQTT endpoint: a CA registered by
 * `onramp ca register --jitp jitp-device` carries the template; the first connection of a
 * device certificate runs it (thing, shared policy, ACTIVE certificate) and is dropped.
 */
describe("JITP over MQTT (local endpoint)", () => {
  let stack: Stack;
  let dir: string;
  let ca: OpensslDeviceCa;
  const clients: MqttClient[] = [];

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-jitp-mqtt-"));
    const endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    ca = OpensslDeviceCa.create(join(dir, "ca"), "JITP MQTT test CA");
    await onramp(
      ...["ca", "register", "--ca-cert", ca.certFile, "--ca-key", ca.keyFile],
      ...["--jitp", "jitp-device", "--endpoints", endpoints, "--json"],
    );
  });
  after(async () => {
    for (const client of clients) await endClient(client);
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const connect = (device: OpensslDevice, clientId = device.serial) =>
    connectDevice({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId,
      credentials: { keyPem: device.keyPem, certPem: device.chainPem },
    });

  it("the CA carries the jitp-device template", async () => {
    const described = await stack.iotClient.send(
      new DescribeCACertificateCommand({ certificateId: ca.caCertificateId }),
    );
    assert.deepEqual(
      JSON.parse(described.registrationConfig?.templateBody ?? "{}"),
      JSON.parse(loadProvisioningTemplate("jitp-device")),
    );
  });

  it("provisions on the first connection (dropped), then the device connects and uses its topics", async () => {
    const device = ca.issueDevice("SN-P-0001", "/C=DE/O=Acme/CN=SN-P-0001");
    const certificateId = certificateIdOf(device.certPem);
    const first = await connect(device);
    assert.equal(first.connected, false, "the first connection is dropped");

    const described = await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }));
    assert.equal(described.certificateDescription?.status, "ACTIVE");
    assert.equal(described.certificateDescription?.caCertificateId, ca.caCertificateId);
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: "SN-P-0001" }));
    assert.deepEqual(thing.attributes, {
      serialNumber: "SN-P-0001",
      country: "DE",
      organization: "Acme",
      provisionedBy: "jitp",
    });
    const arn = described.certificateDescription?.certificateArn;
    const principals = await stack.iotClient.send(new ListThingPrincipalsCommand({ thingName: "SN-P-0001" }));
    assert.deepEqual(principals.principals, [arn]);
    const policies = await stack.iotClient.send(new ListAttachedPoliciesCommand({ target: arn }));
    assert.deepEqual(
      policies.policies?.map((p) => p.policyName),
      [DEVICE_POLICY_NAME],
    );

    const client = await connectOrFail({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId: "SN-P-0001",
      credentials: { keyPem: device.keyPem, certPem: device.chainPem },
    });
    clients.push(client);
    assert.deepEqual(await subscribe(client, "things/SN-P-0001/echo"), [1]);
    const echo = nextMessage(client, "things/SN-P-0001/echo");
    client.publish("things/SN-P-0001/echo", "hello", { qos: 1 });
    assert.equal((await echo)?.payload, "hello");
  });

  it("runs a JITP provisioning template the CA names (registrationConfig.templateName)", async () => {
    const byName = OpensslDeviceCa.create(join(dir, "by-name"), "JITP by template name");
    await stack.iotClient.send(
      new CreateProvisioningTemplateCommand({
        templateName: "onramp-jitp-test",
        templateBody: loadProvisioningTemplate("jitp-device"),
        provisioningRoleArn: "arn:aws:iam::000000000000:role/onramp-jitp",
        type: "JITP",
        enabled: true,
      }),
    );
    await byName.registerWith(stack.iotClient, { templateName: "onramp-jitp-test" });
    const device = byName.issueDevice("SN-P-0002");
    assert.equal((await connect(device)).connected, false, "the first connection is dropped");
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: "SN-P-0002" }));
    assert.equal(thing.attributes?.provisionedBy, "jitp");
    const client = await connectOrFail({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId: "SN-P-0002",
      credentials: { keyPem: device.keyPem, certPem: device.chainPem },
    });
    clients.push(client);
  });

  it("refuses a certificate the template cannot provision (no CN), and registers nothing", async () => {
    const device = ca.issueDevice("no-cn", "/O=Acme");
    const certificateId = certificateIdOf(device.certPem);
    for (let attempt = 0; attempt < 2; attempt++) {
      assert.equal((await connect(device)).connected, false);
    }
    assert.equal(stack.iot.state.certificate(certificateId), undefined);
  });
});
