import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DescribeCertificateCommand, DescribeThingCommand } from "@aws-sdk/client-iot";
import { iot, iotidentity, mqtt } from "aws-iot-device-sdk-v2";
import { createClaimCertificate } from "#cli/commands/fleet.ts";
import { createCsr, createKeyPair } from "#core/pki/issue.ts";
import type { Device } from "#core/registry/model.ts";
import { PROVISIONING_TEMPLATES } from "#templates/catalog.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

/**
 * Interoperability: fleet provisioning by claim with the official AWS IoT Device SDK v2 for
 * JavaScript (aws-crt's native MQTT 3.1.1 client over TLS, its `iotidentity` client) as the
 * device, against the local stack as `npm start` wires it: the claim certificate made as
 * `onramp fleet claim create` makes it, CreateCertificateFromCsr and CreateKeysAndCertificate,
 * RegisterThing on the seeded `fleet-claim-device` template (the real pre-provisioning hook), then
 * a connection with the new certificate (client id = serial) that publishes to its own topic, and
 * the registry committed by that first connection (phase two). Run with `npm run test:interop`.
 */
describe("fleet provisioning with the AWS IoT Device SDK v2 (iotidentity)", () => {
  let stack: Stack;
  let claim: { certPem: string; keyPem: string };
  const serials = ["SDK-FLEET-0001", "SDK-FLEET-0002"];
  const port = () => Number(new URL(stack.endpoints.mqtt).port);

  before(async () => {
    stack = await startTestStack();
    await seedProduct(stack.services, { productKey: "sdk-fleet", name: "Device SDK fleet" }, serials);
    const made = await createClaimCertificate(stack.iotClient);
    claim = { certPem: made.certificatePem, keyPem: made.privateKeyPem };
  });
  after(async () => {
    await stack?.stop();
  });

  /** An SDK connection to the local endpoint (TLS verified against the stack's root CA). */
  async function sdkConnect(clientId: string, certPem: string, keyPem: string) {
    const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder(certPem, keyPem)
      .with_certificate_authority(stack.rootCaPem)
      .with_endpoint("localhost")
      .with_port(port())
      .with_client_id(clientId)
      .with_clean_session(true)
      .build();
    const connection = new mqtt.MqttClient().new_connection(config);
    await connection.connect();
    return connection;
  }

  /** Subscribes to accepted and rejected through the identity client, publishes, takes the answer. */
  async function ask<T>(
    subscribeAccepted: (handler: (error?: unknown, response?: T) => void) => Promise<unknown>,
    subscribeRejected: (
      handler: (error?: unknown, response?: iotidentity.model.ErrorResponse) => void,
    ) => Promise<unknown>,
    publish: () => Promise<unknown>,
  ): Promise<T> {
    let settle: { resolve(value: T): void; reject(error: Error): void } | undefined;
    const answer = new Promise<T>((resolve, reject) => {
      settle = { resolve, reject };
    });
    await subscribeAccepted((error, response) =>
      error || !response ? settle?.reject(new Error(String(error))) : settle?.resolve(response),
    );
    await subscribeRejected((_error, response) =>
      settle?.reject(new Error(`rejected: ${JSON.stringify(response)}`)),
    );
    await publish();
    return answer;
  }

  const waitForStatus = async (serial: string, status: Device["status"]) => {
    let device: Device | undefined;
    for (let i = 0; i < 300; i++) {
      device = await stack.services.registry.getDevice(serial);
      if (device?.status === status) return device;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return device;
  };

  async function provisionAndConnect(
    serial: string,
    create: (identity: iotidentity.IotIdentityClient) => Promise<{
      certificateId: string;
      certificatePem: string;
      token: string;
      keyPem: string;
    }>,
  ) {
    const claimConnection = await sdkConnect(`claim-${serial}`, claim.certPem, claim.keyPem);
    const identity = new iotidentity.IotIdentityClient(claimConnection);
    const created = await create(identity);
    const templateName = PROVISIONING_TEMPLATES.fleetClaim;
    const registered = await ask<iotidentity.model.RegisterThingResponse>(
      (handler) => identity.subscribeToRegisterThingAccepted({ templateName }, mqtt.QoS.AtLeastOnce, handler),
      (handler) => identity.subscribeToRegisterThingRejected({ templateName }, mqtt.QoS.AtLeastOnce, handler),
      () =>
        identity.publishRegisterThing(
          {
            templateName,
            certificateOwnershipToken: created.token,
            parameters: { SerialNumber: serial },
          },
          mqtt.QoS.AtLeastOnce,
        ),
    );
    await claimConnection.disconnect();
    assert.equal(registered.thingName, serial);
    assert.equal(registered.deviceConfiguration?.thingName, serial);
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: serial }));
    assert.equal(thing.attributes?.productKey, "sdk-fleet");
    const certificate = await stack.iotClient.send(
      new DescribeCertificateCommand({ certificateId: created.certificateId }),
    );
    assert.equal(certificate.certificateDescription?.status, "ACTIVE");
    assert.equal((await stack.services.registry.getDevice(serial))?.status, "registered");

    // The device now connects as itself and publishes to its own topic (device policy).
    const own = await sdkConnect(serial, created.certificatePem, created.keyPem);
    const topicPrefix = registered.deviceConfiguration?.topicPrefix ?? `things/${serial}/`;
    await own.publish(
      `${topicPrefix}hello`,
      JSON.stringify({ hello: "from the device SDK" }),
      mqtt.QoS.AtLeastOnce,
    );
    const device = await waitForStatus(serial, "provisioned");
    await own.disconnect();
    assert.equal(device?.status, "provisioned");
    assert.equal(device?.certificateId, created.certificateId);
  }

  it("CreateCertificateFromCsr + RegisterThing, then connects with the new certificate", async () => {
    const serial = serials[0] as string;
    const keys = await createKeyPair("EC-P256");
    const csrPem = await createCsr({ privateKeyPem: keys.privateKeyPem, subject: { commonName: serial } });
    await provisionAndConnect(serial, async (identity) => {
      const response = await ask<iotidentity.model.CreateCertificateFromCsrResponse>(
        (handler) => identity.subscribeToCreateCertificateFromCsrAccepted({}, mqtt.QoS.AtLeastOnce, handler),
        (handler) => identity.subscribeToCreateCertificateFromCsrRejected({}, mqtt.QoS.AtLeastOnce, handler),
        () =>
          identity.publishCreateCertificateFromCsr(
            { certificateSigningRequest: csrPem },
            mqtt.QoS.AtLeastOnce,
          ),
      );
      return {
        certificateId: response.certificateId ?? "",
        certificatePem: response.certificatePem ?? "",
        token: response.certificateOwnershipToken ?? "",
        keyPem: keys.privateKeyPem,
      };
    });
  });

  it("CreateKeysAndCertificate + RegisterThing, then connects with the key AWS IoT made", async () => {
    const serial = serials[1] as string;
    await provisionAndConnect(serial, async (identity) => {
      const response = await ask<iotidentity.model.CreateKeysAndCertificateResponse>(
        (handler) => identity.subscribeToCreateKeysAndCertificateAccepted({}, mqtt.QoS.AtLeastOnce, handler),
        (handler) => identity.subscribeToCreateKeysAndCertificateRejected({}, mqtt.QoS.AtLeastOnce, handler),
        () => identity.publishCreateKeysAndCertificate({}, mqtt.QoS.AtLeastOnce),
      );
      return {
        certificateId: response.certificateId ?? "",
        certificatePem: response.certificatePem ?? "",
        token: response.certificateOwnershipToken ?? "",
        keyPem: response.privateKey ?? "",
      };
    });
  });
});
