import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DescribeCertificateCommand, ListThingPrincipalsCommand } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { silentLogger } from "#core/logger.ts";
import { revokeDevice } from "#core/registry/manage-devices.ts";
import { reconcileDevices } from "#core/registry/reconcile-devices.ts";
import { rotateCertificate } from "#core/rotation/rotate-certificate.ts";
import { closed, connectOrFail, nextMessage, subscribe } from "#test/local/mqtt/mqtt-device.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type Answer = {
  accepted: boolean;
  code?: string;
  certificateId?: string;
  certificatePem?: string;
  requestId?: string;
};

/**
 * Certificate rotation over MQTT end to end on the local stack: a vended device connects with its
 * certificate over TLS, publishes a CSR for a new key on `things/{serial}/certificates/rotate`, the
 * rule (with `principal()` and `topic(2)`) runs the real rotation handler, the answer comes back on
 * `.../rotate/accepted`; connecting with the new certificate switches over and revokes the old.
 */
describe("certificate rotation over MQTT", () => {
  let stack: Stack;
  let product: Awaited<ReturnType<typeof seedProduct>>;
  const serials = Array.from({ length: 10 }, (_, i) => `ROT-${String(i).padStart(4, "0")}`);
  let n = 0;
  const nextSerial = () => serials[n++] ?? assert.fail("out of serials");

  before(async () => {
    stack = await startTestStack();
    product = await seedProduct(stack.services, { productKey: "rot-product", name: "Rotation" }, serials);
  });
  after(() => stack.stop());

  /** A provisioned device: its key and certificate from the vending API. */
  async function provisioned(serial: string) {
    const { csrPem, keyPem } = opensslCsr(serial);
    const res = await requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: "rot-product",
      secret: product.secretFor(serial),
      keyMode: "csr",
      csr: csrPem,
    });
    assert.equal(res.status, 201);
    const body = res.body as { certificateId: string; certificatePem: string };
    return { keyPem, certPem: body.certificatePem, certificateId: body.certificateId };
  }

  const connect = (serial: string, credentials: { keyPem: string; certPem: string }) =>
    connectOrFail({ url: stack.endpoints.mqtt, caPem: stack.iot.rootCaPem, clientId: serial, credentials });

  /** Publishes a rotation request and waits for the answer on accepted or rejected. */
  async function askRotation(
    client: MqttClient,
    serial: string,
    csr: string,
    requestId: string,
  ): Promise<Answer> {
    const answer = nextMessage(client, `things/${serial}/certificates/rotate/+`, 10_000);
    client.publish(`things/${serial}/certificates/rotate`, JSON.stringify({ requestId, csr }), { qos: 1 });
    const message = await answer;
    assert.ok(message, "an answer arrived");
    return JSON.parse(message.payload) as Answer;
  }

  const statusOf = async (certificateId: string) => {
    try {
      const out = await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }));
      return out.certificateDescription?.status;
    } catch (error) {
      if ((error as Error).name === "ResourceNotFoundException") return "GONE";
      throw error;
    }
  };

  it("rotates: new certificate active and attached before the device gets it; the switch revokes the old", async () => {
    const serial = nextSerial();
    const old = await provisioned(serial);
    const client = await connect(serial, old);
    await subscribe(client, `things/${serial}/certificates/rotate/+`);
    const next = opensslCsr(serial);
    const answer = await askRotation(client, serial, next.csrPem, "r-1");
    assert.equal(answer.accepted, true, JSON.stringify(answer));
    assert.equal(answer.requestId, "r-1");
    const fresh = answer.certificateId!;
    assert.equal(await statusOf(fresh), "ACTIVE");
    assert.equal(await statusOf(old.certificateId), "ACTIVE", "the old one works until the switch");
    const principals = await stack.iotClient.send(new ListThingPrincipalsCommand({ thingName: serial }));
    assert.equal(principals.principals?.length, 2);
    const pending = await stack.services.registry.getDevice(serial);
    assert.equal(pending?.rotation?.certificateId, fresh);
    assert.equal(pending?.certificateId, old.certificateId);

    // A retry with the same CSR (the answer was lost) gets the same certificate.
    const again = await askRotation(client, serial, next.csrPem, "r-2");
    assert.equal(again.certificateId, fresh);
    client.end(true);

    // The device reconnects with the new certificate: the switch.
    const rotated = await connect(serial, { keyPem: next.keyPem, certPem: answer.certificatePem! });
    try {
      for (let i = 0; i < 200 && (await statusOf(old.certificateId)) !== "GONE"; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(await statusOf(old.certificateId), "GONE");
      const device = await stack.services.registry.getDevice(serial);
      assert.equal(device?.certificateId, fresh);
      assert.equal(device?.activatedCertificateId, fresh);
      assert.equal(device?.rotation, undefined);
    } finally {
      rotated.end(true);
    }
  });

  it("a failure midway leaves the old certificate working and no new one; the retry succeeds", async () => {
    const serial = nextSerial();
    const old = await provisioned(serial);
    const client = await connect(serial, old);
    try {
      await subscribe(client, `things/${serial}/certificates/rotate/+`);
      const next = opensslCsr(serial);
      for (const operation of ["RegisterThing", "UpdateCertificate"]) {
        stack.iot.faults.inject({ operation, error: "InternalFailureException", times: 3 });
        const failed = await askRotation(client, serial, next.csrPem, `fail-${operation}`);
        stack.iot.faults.clear();
        assert.deepEqual([failed.accepted, failed.code], [false, "TRY_AGAIN"]);
        const principals = await stack.iotClient.send(new ListThingPrincipalsCommand({ thingName: serial }));
        assert.equal(principals.principals?.length, 1, "no new certificate left behind");
        assert.equal(await statusOf(old.certificateId), "ACTIVE");
      }
      const retried = await askRotation(client, serial, next.csrPem, "retry");
      assert.equal(retried.accepted, true, JSON.stringify(retried));
    } finally {
      client.end(true);
    }
  });

  it("refuses another certificate, the current key, a wrong CN, and a revoked device", async () => {
    const serial = nextSerial();
    const old = await provisioned(serial);
    const other = await provisioned(nextSerial());
    const deps = {
      ...stack.services,
      logger: silentLogger,
      config: { claimTtlMs: 60_000 },
    };
    const request = { thingName: serial, principal: old.certificateId, csr: opensslCsr(serial).csrPem };
    assert.equal(
      (await rotateCertificate(deps, { ...request, principal: other.certificateId })).accepted,
      false,
    );
    const wrongCn = await rotateCertificate(deps, { ...request, csr: opensslCsr("someone-else").csrPem });
    assert.deepEqual([wrongCn.accepted, !wrongCn.accepted && wrongCn.code], [false, "INVALID_CSR"]);
    const garbage = await rotateCertificate(deps, { ...request, csr: "not a csr" });
    assert.deepEqual([garbage.accepted, !garbage.accepted && garbage.code], [false, "INVALID_CSR"]);

    // Another device's certificate cannot even publish on this device's topic: the policy disconnects it.
    const intruder = await connect(serials[n - 1]!, other);
    intruder.publish(`things/${serial}/certificates/rotate`, JSON.stringify({ csr: request.csr }), {
      qos: 1,
    });
    assert.equal(await closed(intruder), true);

    await revokeDevice(stack.services, serial, "stolen");
    const revoked = await rotateCertificate(deps, request);
    assert.deepEqual([revoked.accepted, !revoked.accepted && revoked.code], [false, "NOT_ALLOWED"]);
  });

  it("of two rotations racing, one wins; the other is told to retry", async () => {
    const serial = nextSerial();
    const old = await provisioned(serial);
    const deps = { ...stack.services, logger: silentLogger, config: { claimTtlMs: 60_000 } };
    const gate = stack.iot.faults.hold("CreateCertificateFromCsr");
    const first = rotateCertificate(deps, {
      thingName: serial,
      principal: old.certificateId,
      csr: opensslCsr(serial).csrPem,
    });
    await gate.reached;
    const second = await rotateCertificate(deps, {
      thingName: serial,
      principal: old.certificateId,
      csr: opensslCsr(serial).csrPem,
    });
    gate.release();
    assert.deepEqual([second.accepted, !second.accepted && second.code], [false, "IN_PROGRESS"]);
    assert.equal((await first).accepted, true);
  });

  it("a device that never comes back is switched once the grace period has passed (registry reconcile)", async () => {
    const serial = nextSerial();
    const old = await provisioned(serial);
    const deps = { ...stack.services, logger: silentLogger, config: { claimTtlMs: 60_000 } };
    const answer = await rotateCertificate(deps, {
      thingName: serial,
      principal: old.certificateId,
      csr: opensslCsr(serial).csrPem,
    });
    assert.ok(answer.accepted);
    const early = await reconcileDevices(deps, { serialNumber: serial }, { dryRun: false });
    assert.deepEqual(early.findings, [], "within the grace period nothing happens");
    const later = Date.now() + 8 * 86_400_000;
    const report = await reconcileDevices(
      { ...deps, clock: () => later },
      { serialNumber: serial },
      { dryRun: false },
    );
    assert.deepEqual(
      report.findings.map((f) => f.kind),
      ["rotation-past-grace"],
    );
    assert.equal(await statusOf(old.certificateId), "GONE");
    assert.equal((await stack.services.registry.getDevice(serial))?.certificateId, answer.certificateId);
  });
});
