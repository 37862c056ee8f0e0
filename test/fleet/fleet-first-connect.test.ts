import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CreateCertificateFromCsrCommand, RegisterThingCommand } from "@aws-sdk/client-iot";
import { defaultFleetHookConfig } from "#core/fleet/authorize-fleet-provisioning.ts";
import { silentLogger } from "#core/logger.ts";
import type { Device } from "#core/registry/model.ts";
import { makePreProvisioningHookHandler } from "#handlers/pre-provisioning-hook.ts";
import { loadProvisioningTemplate, PROVISIONING_TEMPLATES } from "#templates/catalog.ts";
import { connectOrFail } from "#test/local/mqtt/mqtt-device.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

/**
 * Phase two of fleet provisioning end to end on the local stack: the device's first TLS MQTT
 * connection with its new certificate makes the local endpoint publish the lifecycle event
 * `$aws/events/presence/connected/{clientId}`, the local rule engine runs the fleet-commit rule
 * from templates/rules/, and the registry is committed, as on AWS.
 */
describe("fleet provisioning: the first connection commits the registry", () => {
  let stack: Stack;

  before(async () => {
    stack = await startTestStack();
    await seedProduct(stack.services, { productKey: "fc-product", name: "Fleet connect" }, ["FC-0001"]);
  });
  after(() => stack.stop());

  it("commits on the device's first connection through the local MQTT endpoint", async () => {
    const serial = "FC-0001";
    const { csrPem, keyPem } = opensslCsr(serial);
    const created = await stack.iotClient.send(
      new CreateCertificateFromCsrCommand({ certificateSigningRequest: csrPem, setAsActive: false }),
    );
    const hook = makePreProvisioningHookHandler({
      ...stack.services,
      config: defaultFleetHookConfig,
      logger: silentLogger,
    });
    const answer = await hook({
      claimCertificateId: "0".repeat(64),
      certificateId: created.certificateId,
      certificatePem: created.certificatePem,
      templateArn: "arn:aws:iot:us-east-1:000000000000:provisioningtemplate/fleet-claim-device",
      clientId: `claim-${serial}`,
      parameters: { SerialNumber: serial },
    });
    assert.equal(answer.allowProvisioning, true);
    await stack.iotClient.send(
      new RegisterThingCommand({
        templateBody: loadProvisioningTemplate(PROVISIONING_TEMPLATES.fleetClaim),
        parameters: {
          SerialNumber: serial,
          ProductKey: "fc-product",
          "AWS::IoT::Certificate::Id": created.certificateId!,
        },
      }),
    );
    assert.equal((await stack.services.registry.getDevice(serial))?.status, "registered");

    const client = await connectOrFail({
      url: stack.endpoints.mqtt,
      caPem: stack.iot.rootCaPem,
      clientId: serial,
      credentials: { keyPem, certPem: created.certificatePem! },
    });
    try {
      let device: Device | undefined;
      for (let i = 0; i < 300; i++) {
        device = await stack.services.registry.getDevice(serial);
        if (device?.status === "provisioned") break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(device?.status, "provisioned");
      assert.equal(device?.certificateId, created.certificateId);
      assert.equal(device?.activatedCertificateId, created.certificateId);
      assert.equal(device?.claim, undefined);
    } finally {
      client.end(true);
    }
  });
});
