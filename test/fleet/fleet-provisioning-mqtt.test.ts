import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  AttachPolicyCommand,
  CreatePolicyCommand,
  DescribeCertificateCommand,
  DescribeThingCommand,
  ListAttachedPoliciesCommand,
} from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { createClaimCertificate } from "#cli/commands/fleet.ts";
import { defaultFleetHookConfig } from "#core/fleet/authorize-fleet-provisioning.ts";
import { silentLogger } from "#core/logger.ts";
import { evaluateTemplate } from "#core/provisioning-template/index.ts";
import type { Device } from "#core/registry/model.ts";
import { makePreProvisioningHookHandler } from "#handlers/pre-provisioning-hook.ts";
import { localAccountId, localRegion } from "#local/local-aws.ts";
import { LOCAL_PRE_PROVISIONING_HOOK_FUNCTION } from "#local/mqtt/fleet-provisioning.ts";
import { type MqttEndpoint, startMqttEndpoint } from "#local/mqtt/mqtt-endpoint.ts";
import {
  FLEET_CLAIM_POLICY_NAME,
  loadProvisioningTemplate,
  PROVISIONING_TEMPLATES,
} from "#templates/catalog.ts";
import {
  closed,
  connectDevice,
  connectOrFail,
  type DeviceCredentials,
  endClient,
  subscribe,
} from "#test/local/mqtt/mqtt-device.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";
import { CREATE_FROM_CSR, CREATE_KEYS, fleetRequest, provisionTopic } from "./fleet-mqtt-device.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

const TEMPLATE = PROVISIONING_TEMPLATES.fleetClaim;
const PROVISION = provisionTopic(TEMPLATE);

/**
 * The fleet provisioning MQTT API of the local endpoint, with the plain `mqtt` client as the
 * device and the stack as `npm start` wires it: the seeded `fleet-claim-device` template, the
 * claim policy, the real pre-provisioning hook handler in-process, the registry in dynalite, the
 * commit on the first connection.
 */
describe("fleet provisioning MQTT API on the local endpoint", () => {
  let stack: Stack;
  let claim: DeviceCredentials;
  const serials = Array.from({ length: 12 }, (_, i) => `FM-${String(i).padStart(4, "0")}`);
  let next = 0;
  const nextSerial = () => serials[next++] ?? assert.fail("out of serials");
  const clients: MqttClient[] = [];

  before(async () => {
    stack = await startTestStack();
    await seedProduct(stack.services, { productKey: "fm-product", name: "Fleet MQTT" }, serials);
    const made = await createClaimCertificate(stack.iotClient);
    claim = { certPem: made.certificatePem, keyPem: made.privateKeyPem };
  });
  after(async () => {
    for (const client of clients) await endClient(client);
    await stack?.stop();
  });

  const connect = async (clientId: string, credentials: DeviceCredentials = claim) => {
    const client = await connectOrFail({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId,
      credentials,
    });
    clients.push(client);
    return client;
  };

  /** What the template gives a serial: the expected `deviceConfiguration`, from the template itself. */
  const expectedConfiguration = (serial: string, certificateId: string) =>
    evaluateTemplate(loadProvisioningTemplate(TEMPLATE), {
      SerialNumber: serial,
      ProductKey: "fm-product",
      "AWS::IoT::Certificate::Id": certificateId,
    }).deviceConfiguration;

  const waitForStatus = async (serial: string, status: Device["status"]) => {
    let device: Device | undefined;
    for (let i = 0; i < 300; i++) {
      device = await stack.services.registry.getDevice(serial);
      if (device?.status === status) return device;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return device;
  };

  const certificateStatus = async (certificateId: string) =>
    (await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }))).certificateDescription
      ?.status;

  it("seeds the fleet template with its pre-provisioning hook, and the claim policy on the claim certificate", async () => {
    const template = stack.iot.state.provisioningTemplate(TEMPLATE);
    assert.equal(template?.type, "FLEET_PROVISIONING");
    assert.equal(template?.enabled, true);
    assert.match(
      template?.preProvisioningHook?.targetArn ?? "",
      new RegExp(`:function:${LOCAL_PRE_PROVISIONING_HOOK_FUNCTION}$`),
    );
    const certificateId = stack.iot.state
      .listCertificates()
      .find((c) => c.certificatePem === claim.certPem)?.certificateId;
    const attached = await stack.iotClient.send(
      new ListAttachedPoliciesCommand({
        target: stack.iot.state.certificate(certificateId ?? "")?.certificateArn,
      }),
    );
    assert.deepEqual(
      attached.policies?.map((p) => p.policyName),
      [FLEET_CLAIM_POLICY_NAME],
    );
  });

  it("CreateCertificateFromCsr, RegisterThing, then the device's own certificate connects and the registry commits", async () => {
    const serial = nextSerial();
    const device = await connect(`claim-${serial}`);
    const { csrPem, keyPem } = opensslCsr(serial);
    const created = await fleetRequest(device, CREATE_FROM_CSR, { certificateSigningRequest: csrPem });
    assert.equal(created.outcome, "accepted");
    assert.deepEqual(Object.keys(created.body).sort(), [
      "certificateId",
      "certificateOwnershipToken",
      "certificatePem",
    ]);
    const certificateId = created.body.certificateId as string;
    assert.equal(await certificateStatus(certificateId), "PENDING_ACTIVATION");

    const provisioned = await fleetRequest(device, PROVISION, {
      certificateOwnershipToken: created.body.certificateOwnershipToken,
      parameters: { SerialNumber: serial },
    });
    assert.deepEqual(provisioned, {
      outcome: "accepted",
      body: { deviceConfiguration: expectedConfiguration(serial, certificateId), thingName: serial },
    });
    assert.equal(await certificateStatus(certificateId), "ACTIVE");
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: serial }));
    // ProductKey comes from the hook's parameterOverrides, not from the device.
    assert.equal(thing.attributes?.productKey, "fm-product");
    assert.equal((await stack.services.registry.getDevice(serial))?.status, "registered");
    await endClient(device);

    const own = await connect(serial, { keyPem, certPem: created.body.certificatePem as string });
    await new Promise<void>((resolve, reject) =>
      own.publish(`things/${serial}/hello`, "hi", { qos: 1 }, (error) => (error ? reject(error) : resolve())),
    );
    const committed = await waitForStatus(serial, "provisioned");
    assert.equal(committed?.status, "provisioned");
    assert.equal(committed?.certificateId, certificateId);
  });

  it("CreateKeysAndCertificate (empty payload) gives a private key the device connects with", async () => {
    const serial = nextSerial();
    const device = await connect(`claim-${serial}`);
    const created = await fleetRequest(device, CREATE_KEYS, "");
    assert.equal(created.outcome, "accepted");
    assert.deepEqual(Object.keys(created.body).sort(), [
      "certificateId",
      "certificateOwnershipToken",
      "certificatePem",
      "privateKey",
    ]);
    const provisioned = await fleetRequest(device, PROVISION, {
      certificateOwnershipToken: created.body.certificateOwnershipToken,
      parameters: { SerialNumber: serial },
    });
    assert.equal(provisioned.outcome, "accepted");
    assert.equal(provisioned.body.thingName, serial);
    const own = await connect(serial, {
      keyPem: created.body.privateKey as string,
      certPem: created.body.certificatePem as string,
    });
    assert.ok(own.connected);
    assert.equal((await waitForStatus(serial, "provisioned"))?.status, "provisioned");
  });

  it("rejects with AWS's shape: hook denial (unknown serial, a serial provisioned already), bad, empty and foreign tokens", async () => {
    const serial = nextSerial();
    const device = await connect(`claim-${serial}`);
    const created = await fleetRequest(device, CREATE_KEYS, {});
    const token = created.body.certificateOwnershipToken as string;
    const certificateId = created.body.certificateId as string;

    const unknown = await fleetRequest(device, PROVISION, {
      certificateOwnershipToken: token,
      parameters: { SerialNumber: "FM-NOT-IN-REGISTRY" },
    });
    assert.equal(unknown.outcome, "rejected");
    assert.deepEqual(Object.keys(unknown.body).sort(), ["errorCode", "errorMessage", "statusCode"]);
    assert.equal(unknown.body.statusCode, 403);
    assert.equal(await certificateStatus(certificateId), "PENDING_ACTIVATION");
    await assert.rejects(stack.iotClient.send(new DescribeThingCommand({ thingName: "FM-NOT-IN-REGISTRY" })));

    const empty = await fleetRequest(device, PROVISION, { parameters: { SerialNumber: serial } });
    assert.deepEqual(empty.body, {
      statusCode: 400,
      errorCode: "InvalidCertificateOwnershipToken",
      errorMessage: "Certificate ownership token cannot be empty.",
    });
    const forged = await fleetRequest(device, PROVISION, {
      certificateOwnershipToken: randomBytes(48).toString("base64url"),
      parameters: { SerialNumber: serial },
    });
    assert.equal(forged.outcome, "rejected");
    assert.equal(forged.body.errorCode, "InvalidCertificateOwnershipToken");

    // Another connection (same claim certificate, another client id) cannot use this token.
    const other = await connect(`claim-${nextSerial()}`);
    const foreign = await fleetRequest(other, PROVISION, {
      certificateOwnershipToken: token,
      parameters: { SerialNumber: serial },
    });
    assert.equal(foreign.outcome, "rejected");
    assert.equal(foreign.body.statusCode, 400);
    assert.equal(foreign.body.errorCode, "InvalidCertificateOwnershipToken");
    assert.equal((await stack.services.registry.getDevice(serial))?.status, "registered");

    // The token still works on its own connection; a second certificate for the serial is denied.
    const allowed = await fleetRequest(device, PROVISION, {
      certificateOwnershipToken: token,
      parameters: { SerialNumber: serial },
    });
    assert.equal(allowed.outcome, "accepted");
    const second = await fleetRequest(device, CREATE_KEYS, {});
    const takeover = await fleetRequest(device, PROVISION, {
      certificateOwnershipToken: second.body.certificateOwnershipToken,
      parameters: { SerialNumber: serial },
    });
    assert.equal(takeover.outcome, "rejected");
    assert.equal(takeover.body.statusCode, 403);
  });

  it("rejects malformed JSON and a bad CSR, and answers only the connection that asked", async () => {
    const device = await connect(`claim-${nextSerial()}`);
    const bystander = await connect(`claim-${nextSerial()}`);
    const seenByBystander: string[] = [];
    await subscribe(bystander, "$aws/certificates/create-from-csr/json/+");
    await subscribe(bystander, "$aws/certificates/create/json/+");
    bystander.on("message", (topic) => seenByBystander.push(topic));

    const notJson = await fleetRequest(device, CREATE_FROM_CSR, "{not json");
    assert.equal(notJson.outcome, "rejected");
    assert.equal(notJson.body.statusCode, 400);
    assert.equal(notJson.body.errorCode, "InvalidPayload");
    const badCsr = await fleetRequest(device, CREATE_FROM_CSR, {
      certificateSigningRequest:
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    });
    assert.equal(badCsr.outcome, "rejected");
    assert.equal(badCsr.body.statusCode, 400);
    const provisionNotJson = await fleetRequest(device, PROVISION, "[1,2");
    assert.equal(provisionNotJson.body.errorCode, "InvalidPayload");
    const created = await fleetRequest(device, CREATE_KEYS, "");
    assert.equal(created.outcome, "accepted");

    // The bystander's own request is answered to it; it saw nothing of the other device's.
    const own = await fleetRequest(bystander, CREATE_KEYS, "");
    assert.equal(own.outcome, "accepted");
    assert.deepEqual(seenByBystander, ["$aws/certificates/create/json/accepted"]);
  });

  it("rejects an unknown template (with a policy that lets the claim certificate ask for it)", async () => {
    await stack.iotClient.send(
      new CreatePolicyCommand({
        policyName: "fm-any-template",
        policyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: ["iot:Publish", "iot:Receive"],
              Resource: "arn:aws:iot:*:*:topic/$aws/provisioning-templates/*",
            },
            {
              Effect: "Allow",
              Action: "iot:Subscribe",
              Resource: "arn:aws:iot:*:*:topicfilter/$aws/provisioning-templates/*",
            },
          ],
        }),
      }),
    );
    const made = await createClaimCertificate(stack.iotClient);
    await stack.iotClient.send(
      new AttachPolicyCommand({ policyName: "fm-any-template", target: made.certificateArn }),
    );
    const device = await connect(`claim-${nextSerial()}`, {
      certPem: made.certificatePem,
      keyPem: made.privateKeyPem,
    });
    const created = await fleetRequest(device, CREATE_KEYS, "");
    const answer = await fleetRequest(device, provisionTopic("no-such-template"), {
      certificateOwnershipToken: created.body.certificateOwnershipToken,
      parameters: { SerialNumber: "FM-0000" },
    });
    assert.equal(answer.outcome, "rejected");
    assert.equal(answer.body.statusCode, 404);
    assert.equal(typeof answer.body.errorMessage, "string");
  });

  it("keeps the claim certificate to its own topics: another device's topics, other templates, other client ids", async () => {
    const serial = nextSerial();
    // Connect: only client ids claim-*.
    const refused = await connectDevice({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId: serials[0] as string,
      credentials: claim,
    });
    assert.equal(refused.connected, false);

    const device = await connect(`claim-${serial}`);
    assert.deepEqual(await subscribe(device, `things/${serials[0]}/#`), [128]);
    assert.deepEqual(await subscribe(device, "$aws/provisioning-templates/other/provision/json/+"), [128]);
    device.publish(`things/${serials[0]}/cmd`, "takeover", { qos: 1 });
    assert.equal(await closed(device), true);

    const again = await connect(`claim-${serial}`);
    again.publish(provisionTopic("other"), "{}", { qos: 1 });
    assert.equal(await closed(again), true);
  });

  it("refuses an expired ownership token (AWS: one hour) and deletes the certificate nobody used", async () => {
    // A second endpoint on the same registry whose clock the test moves.
    let now = Date.now();
    const endpoint: MqttEndpoint = await startMqttEndpoint({
      iot: stack.iot,
      rules: stack.mqtt.rules,
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger,
      region: localRegion,
      accountId: localAccountId,
      fleet: {
        hooks: new Map([
          [
            LOCAL_PRE_PROVISIONING_HOOK_FUNCTION,
            makePreProvisioningHookHandler({
              ...stack.services,
              config: defaultFleetHookConfig,
              logger: silentLogger,
            }),
          ],
        ]),
        clock: () => now,
      },
    });
    try {
      const serial = nextSerial();
      const device = await connectOrFail({
        url: endpoint.url,
        caPem: stack.rootCaPem,
        clientId: `claim-${serial}`,
        credentials: claim,
      });
      clients.push(device);
      const used = await fleetRequest(device, CREATE_KEYS, "");
      const unused = await fleetRequest(device, CREATE_KEYS, "");
      now += 60 * 60_000 + 1;
      const expired = await fleetRequest(device, PROVISION, {
        certificateOwnershipToken: used.body.certificateOwnershipToken,
        parameters: { SerialNumber: serial },
      });
      assert.equal(expired.outcome, "rejected");
      assert.equal(expired.body.errorCode, "InvalidCertificateOwnershipToken");
      assert.equal(stack.iot.state.certificate(unused.body.certificateId as string), undefined);
      assert.equal(stack.iot.state.certificate(used.body.certificateId as string), undefined);
      assert.equal((await stack.services.registry.getDevice(serial))?.status, "registered");
    } finally {
      await endpoint.close();
    }
  });
});
