import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ListCertificatesCommand, ListThingsCommand } from "@aws-sdk/client-iot";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { createCsr, createKeyPair } from "#core/pki/issue.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

/**
 * A fault at each step of the vending flow. After each: no orphaned certificate or thing in the
 * IoT emulator, the registry consistent, and a retry succeeds. AWS IoT faults come from the
 * emulator's fault injection; DynamoDB faults from a proxy in front of dynalite (dynalite cannot
 * be told to fail), matched on the operation and a text of the update expression.
 */
describe("vending under injected faults", () => {
  let stack: Stack;
  let product: Awaited<ReturnType<typeof seedProduct>>;
  let n = 0;
  let t = 0;
  let templateProduct: Awaited<ReturnType<typeof seedProduct>>;

  before(async () => {
    stack = await startTestStack({ dynamoFaultInjection: true });
    product = await seedProduct(
      stack.services,
      { productKey: "faulty", name: "Fault tests" },
      Array.from({ length: 20 }, (_, i) => `F-${i}`),
    );
    templateProduct = await seedProduct(
      stack.services,
      { productKey: "faulty-template", name: "Fault tests", templateName: "cvm-device-certificate-policy" },
      Array.from({ length: 10 }, (_, i) => `FT-${i}`),
    );
  });
  after(() => stack.stop());

  const vend = async (serial: string, privateKeyPem: string) =>
    requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: serial.startsWith("FT-") ? "faulty-template" : "faulty",
      secret: (serial.startsWith("FT-") ? templateProduct : product).secretFor(serial),
      keyMode: "csr",
      csr: await createCsr({ privateKeyPem, subject: { commonName: serial } }),
    });

  const iotCounts = async () => {
    const certs = await stack.iotClient.send(new ListCertificatesCommand({ pageSize: 250 }));
    const things = await stack.iotClient.send(new ListThingsCommand({ maxResults: 250 }));
    return { certificates: certs.certificates?.length ?? 0, things: things.things?.length ?? 0 };
  };

  // Direct path (the default template) and RegisterThing (a product on a template: FT- serials).
  const iotSteps = [
    { operation: "CreateCertificateFromCsr", error: "InternalFailureException", status: 503, prefix: "F-" },
    { operation: "CreateCertificateFromCsr", error: "ThrottlingException", status: 429, prefix: "F-" },
    { operation: "CreateThing", error: "InternalFailureException", status: 503, prefix: "F-" },
    { operation: "AttachThingPrincipal", error: "ThrottlingException", status: 429, prefix: "F-" },
    { operation: "RegisterThing", error: "InternalFailureException", status: 503, prefix: "FT-" },
    { operation: "RegisterThing", error: "ThrottlingException", status: 429, prefix: "FT-" },
  ];
  for (const step of iotSteps) {
    it(`undoes everything when AWS IoT ${step.operation} fails with ${step.error}`, async () => {
      const serial = step.prefix === "F-" ? `F-${n++}` : `FT-${t++}`;
      const { privateKeyPem } = await createKeyPair("EC-P256");
      const before = await iotCounts();
      stack.iot.faults.inject({ operation: step.operation, error: step.error, times: 10 });
      const res = await vend(serial, privateKeyPem);
      stack.iot.faults.clear();
      assert.equal(res.status, step.status, JSON.stringify(res.body));
      if (step.status === 429 || step.status === 503) assert.ok(res.headers.get("retry-after"));
      assert.deepEqual(await iotCounts(), before, "no orphaned certificate or thing");
      const device = await stack.services.registry.getDevice(serial);
      assert.equal(device?.status, "registered");
      assert.equal(device?.claim, undefined);
      const retry = await vend(serial, privateKeyPem);
      assert.equal(retry.status, 201);
    });
  }

  for (const { operation, serial: nextOf } of [
    { operation: "UpdateCertificate", serial: () => `FT-${t++}` },
    { operation: "AddThingToThingGroup", serial: () => `F-${n++}` },
  ]) {
    it(`keeps a committed certificate when the step after the commit (${operation}) fails, and the retry completes it`, async () => {
      const serial = nextOf();
      const { privateKeyPem } = await createKeyPair("EC-P256");
      stack.iot.faults.inject({ operation, error: "InternalFailureException", times: 10 });
      const res = await vend(serial, privateKeyPem);
      stack.iot.faults.clear();
      assert.equal(res.status, 503);
      const device = await stack.services.registry.getDevice(serial);
      assert.equal(device?.status, "provisioned");
      const retry = await vend(serial, privateKeyPem);
      assert.equal(retry.status, 200);
      assert.equal(retry.body.certificateId, device?.certificateId);
      const inspected = await stack.services.iot.inspectCertificate(device!.certificateId!);
      assert.equal(inspected?.status, "ACTIVE");
      assert.deepEqual(inspected?.things, [serial]);
      assert.deepEqual(inspected?.policies, ["onramp-device-policy"]);
      assert.equal(
        (await stack.services.registry.getDevice(serial))?.activatedCertificateId,
        device?.certificateId,
      );
    });
  }

  const dynamoSteps = [
    { name: "the claim", bodyIncludes: ":nowMs" },
    { name: "recording the certificate on the claim", bodyIncludes: "#claim.certificateId" },
    { name: "the registry commit", bodyIncludes: ":provisioned" },
  ];
  for (const step of dynamoSteps) {
    it(`undoes everything when DynamoDB fails at ${step.name}`, async () => {
      const serial = `F-${n++}`;
      const { privateKeyPem } = await createKeyPair("EC-P256");
      const before = await iotCounts();
      stack.dynamoFaults!.inject({ operation: "UpdateItem", bodyIncludes: step.bodyIncludes, times: 10 });
      const res = await vend(serial, privateKeyPem);
      stack.dynamoFaults!.clear();
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.deepEqual(await iotCounts(), before, "no orphaned certificate or thing");
      const device = await stack.services.registry.getDevice(serial);
      assert.equal(device?.status, "registered");
      assert.equal(device?.claim, undefined);
      assert.equal((await vend(serial, privateKeyPem)).status, 201);
    });
  }
});
