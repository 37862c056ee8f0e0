import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { createCsr, createKeyPair } from "#core/pki/issue.ts";
import { productThingGroupName } from "#core/registry/register-device-thing.ts";
import type { LocalStack } from "#local/stack.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";
import { connectDevice } from "../local/mqtt/mqtt-device.ts";

type Stack = LocalStack & { stop(): Promise<void> };

async function csrFor(serial: string) {
  const { privateKeyPem } = await createKeyPair("EC-P256");
  return { keyPem: privateKeyPem, csr: await createCsr({ privateKeyPem, subject: { commonName: serial } }) };
}

/** Emulator certificates that no registry device names: what a failed flow would leave behind. */
async function orphans(stack: Stack): Promise<string[]> {
  const left: string[] = [];
  for (const cert of stack.iot.state.listCertificates()) {
    const serial = stack.iot.state.principalThings(cert.certificateArn)[0];
    const device = serial ? await stack.services.registry.getDevice(serial) : undefined;
    if (device?.certificateId !== cert.certificateId) left.push(cert.certificateId);
  }
  return left;
}

/**
 * Vending with the emulator's AWS default quotas on and admission control: a burst over the budget
 * is answered 429 at once (no AWS IoT call is spent on it) with a Retry-After from the backlog;
 * devices that honour it all get their certificate, nothing is left behind, no 5xx.
 */
describe("vend under the provisioning budget (emulator quotas: AWS defaults)", () => {
  let stack: Stack;
  before(async () => {
    stack = await startTestStack({ awsQuotas: "default" });
  });
  after(async () => stack.stop());

  it("over budget: 429 with Retry-After before any AWS IoT call; retries after it all succeed, 0 orphans", async () => {
    const serials = Array.from({ length: 30 }, (_, i) => `budget-${i}`);
    const product = await seedProduct(
      stack.services,
      { productKey: "budget-product", name: "budget", authMode: "product-secret" },
      serials,
    );
    const csrs = await Promise.all(serials.map(csrFor));
    stack.iot.faults.resetCalls();
    const vend = (i: number) =>
      requestCertificate({
        apiUrl: stack.endpoints.api,
        serialNumber: serials[i]!,
        productKey: "budget-product",
        secret: product.productSecret,
        keyMode: "csr",
        csr: csrs[i]!.csr,
      });
    const first = await Promise.all(serials.map((_, i) => vend(i)));
    const created = first.filter((r) => r.status === 201).length;
    const refused = first.filter((r) => r.status === 429);
    assert.equal(created + refused.length, 30, `statuses: ${first.map((r) => r.status).join(",")}`);
    assert.ok(refused.length > 0, "30 at once is over a budget of 10/s");
    for (const r of refused) {
      assert.equal((r.body.error as { code: string }).code, "PROVISIONING_BUDGET_EXCEEDED");
      assert.match(r.headers.get("retry-after") ?? "", /^[1-9][0-9]*$/);
    }
    // Refused requests spent nothing on AWS IoT: one certificate per created vend.
    assert.equal(stack.iot.faults.calls("CreateCertificateFromCsr"), created);

    // Devices honour Retry-After (bounded attempts).
    let pending = first.flatMap((r, i) =>
      r.status === 201 ? [] : [{ i, wait: Number(r.headers.get("retry-after")) }],
    );
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 10 && pending.length > 0; attempt++) {
      const next: typeof pending = [];
      await Promise.all(
        pending.map(async ({ i, wait }) => {
          await new Promise((resolve) => setTimeout(resolve, wait * 1000));
          const r = await vend(i);
          statuses.push(r.status);
          if (r.status !== 201) next.push({ i, wait: Number(r.headers.get("retry-after") ?? "1") });
        }),
      );
      pending = next;
    }
    assert.equal(pending.length, 0, "every device got its certificate");
    assert.ok(
      statuses.every((s) => s === 201 || s === 429),
      `statuses ${statuses.join(",")}`,
    );
    for (const serial of serials) {
      assert.equal((await stack.services.registry.getDevice(serial))?.status, "provisioned");
    }
    assert.deepEqual(await orphans(stack), []);
  });
});

/**
 * AWS IoT calls per vend, counted by the emulator: the direct path (default) against RegisterThing
 * (a product on a template), and the device of each connects over MQTT with its client id = thing
 * name (the thing group's policy applies) and not with another client id.
 */
describe("vend: AWS IoT calls per path (emulator counts)", () => {
  let stack: Stack;
  before(async () => {
    stack = await startTestStack();
  });
  after(async () => stack.stop());

  const counts = (stack: Stack) =>
    Object.fromEntries(Object.entries(stack.iot.faults.allCalls()).filter(([, n]) => n > 0));

  async function vendOne(productKey: string, serial: string, secret: string) {
    const { keyPem, csr } = await csrFor(serial);
    const r = await requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey,
      secret,
      keyMode: "csr",
      csr,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return { keyPem, certPem: String(r.body.certificatePem) };
  }

  it("direct path: CreateCertificateFromCsr (ACTIVE), DescribeThing, CreateThing, AttachThingPrincipal, AddThingToThingGroup; no RegisterThing, no UpdateCertificate", async () => {
    const product = await seedProduct(
      stack.services,
      { productKey: "direct-product", name: "direct", authMode: "product-secret" },
      ["direct-1", "direct-2"],
    );
    await vendOne("direct-product", "direct-1", product.productSecret); // first: makes the group
    stack.iot.faults.resetCalls();
    const credentials = await vendOne("direct-product", "direct-2", product.productSecret);
    assert.deepEqual(counts(stack), {
      CreateCertificateFromCsr: 1,
      DescribeThing: 1,
      CreateThing: 1,
      AttachThingPrincipal: 1,
      AddThingToThingGroup: 1,
    });
    // The certificate has no policy of its own; its thing's group carries the product's.
    const cert = stack.iot.state
      .listCertificates()
      .find((c) => c.certificatePem.trim() === credentials.certPem.trim());
    assert.ok(cert);
    assert.equal(cert.status, "ACTIVE");
    assert.deepEqual(stack.iot.state.attachedPolicies(cert.certificateArn), []);
    assert.deepEqual(stack.iot.state.thing("direct-2")?.thingGroups, [
      productThingGroupName("direct-product"),
    ]);

    const url = stack.endpoints.mqtt;
    const own = await connectDevice({ url, caPem: stack.iot.rootCaPem, clientId: "direct-2", credentials });
    assert.ok(own.connected, "client id = thing name: the group's policy applies");
    own.client.end(true);
    const other = await connectDevice({ url, caPem: stack.iot.rootCaPem, clientId: "direct-1", credentials });
    assert.equal(other.connected, false, "another thing's name: not this certificate's thing");
    const none = await connectDevice({
      url,
      caPem: stack.iot.rootCaPem,
      clientId: "not-a-thing",
      credentials,
    });
    assert.equal(none.connected, false, "no thing of that name: no group policy, no own policy");
  });

  it("template path (a product on a template): CreateCertificateFromCsr, DescribeThing, RegisterThing, UpdateCertificate", async () => {
    const product = await seedProduct(
      stack.services,
      {
        productKey: "template-product",
        name: "template",
        authMode: "product-secret",
        templateName: "cvm-device-certificate-policy",
      },
      ["template-1"],
    );
    stack.iot.faults.resetCalls();
    const credentials = await vendOne("template-product", "template-1", product.productSecret);
    assert.deepEqual(counts(stack), {
      CreateCertificateFromCsr: 1,
      DescribeThing: 1,
      RegisterThing: 1,
      UpdateCertificate: 1,
    });
    const own = await connectDevice({
      url: stack.endpoints.mqtt,
      caPem: stack.iot.rootCaPem,
      clientId: "template-1",
      credentials,
    });
    assert.ok(own.connected);
    own.client.end(true);
  });
});
