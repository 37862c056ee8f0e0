import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
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
import { certificateDevice, type DeviceCaStack, startDeviceCaStack } from "#test/support/device-ca.ts";
import { onramp } from "#test/support/run-cli.ts";
import { connectDevice, connectOrFail, nextMessage, subscribe } from "./mqtt-device.ts";
import { type OpensslDevice, OpensslDeviceCa } from "./openssl-device-ca.ts";

const certificateIdOf = (pem: string) => readCertificate(pem).id;

/**
 * Just-in-time provisioning through the local MQTT endpoint: a CA registered by
 * `onramp ca register --jitp jitp-device` carries the template; the first connection of a
 * device certificate runs it (thing, shared policy, ACTIVE certificate) and is dropped.
 */
describe("JITP over MQTT (local endpoint)", () => {
  let fixture: DeviceCaStack;
  let stack: DeviceCaStack["stack"];
  let dir: string;
  let ca: OpensslDeviceCa;
  const clients: MqttClient[] = [];

  before(async () => {
    fixture = await startDeviceCaStack({ caName: "JITP MQTT test CA", tmpPrefix: "onramp-jitp-mqtt-" });
    ({ stack, dir, ca } = fixture);
    const endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    await onramp(
      ...["ca", "register", "--ca-cert", ca.certFile, "--ca-key", ca.keyFile],
      ...["--jitp", "jitp-device", "--endpoints", endpoints, "--json"],
    );
  });
  after(() => fixture?.stop(clients));

  const connect = (device: OpensslDevice, clientId = device.serial) =>
    connectDevice(certificateDevice(stack, device, clientId));

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

    const client = await connectOrFail(certificateDevice(stack, device, "SN-P-0001"));
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
    const client = await connectOrFail(certificateDevice(stack, device, "SN-P-0002"));
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
