import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  CreateThingCommand,
  DeleteCertificateCommand,
  DescribeCertificateCommand,
  DescribeThingCommand,
  DetachThingPrincipalCommand,
  ListCertificatesCommand,
  ListThingPrincipalsCommand,
  UpdateCertificateCommand,
} from "@aws-sdk/client-iot";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { disableDevice, revokeDevice } from "#core/registry/manage-devices.ts";
import { createProduct } from "#core/registry/manage-products.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

/**
 * The vending flow's claim and commit against the local stack: an operator's disable or revoke
 * landing mid-flow (held deterministically between two AWS IoT calls with the emulator's answer
 * gate), certificates an operator deactivated or deleted, and concurrent requests with one key.
 */
describe("vending: claims, commits and the operator's last word", () => {
  let stack: Stack;
  let product: Awaited<ReturnType<typeof seedProduct>>;
  const serials = Array.from({ length: 40 }, (_, i) => `VC-${String(i).padStart(4, "0")}`);
  let n = 0;
  const nextSerial = () => serials[n++] ?? assert.fail("out of serials");

  const templateSerials = Array.from({ length: 12 }, (_, i) => `VT-${String(i).padStart(4, "0")}`);
  let t = 0;
  let templateProduct: Awaited<ReturnType<typeof seedProduct>>;

  before(async () => {
    stack = await startTestStack();
    product = await seedProduct(stack.services, { productKey: "vc-product", name: "Claims" }, serials);
    templateProduct = await seedProduct(
      stack.services,
      { productKey: "vc-template", name: "Claims (template)", templateName: "cvm-device-certificate-policy" },
      templateSerials,
    );
  });
  after(() => stack.stop());

  const vend = (serial: string, csr: string) =>
    requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: "vc-product",
      secret: product.secretFor(serial),
      keyMode: "csr",
      csr,
    });

  const statusOf = async (certificateId: string) => {
    try {
      const out = await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }));
      return out.certificateDescription?.status;
    } catch (error) {
      if ((error as Error).name === "ResourceNotFoundException") return "GONE";
      throw error;
    }
  };

  const certificateCount = async () => {
    const out = await stack.iotClient.send(new ListCertificatesCommand({ pageSize: 250 }));
    return out.certificates?.length ?? 0;
  };

  // The last AWS IoT call before the commit, and the call between the commit and the activation,
  // per provisioning path: direct (the default template) and RegisterThing (a product template).
  const paths = [
    { path: "direct", beforeCommit: "AttachThingPrincipal", afterCommit: "AddThingToThingGroup" },
    { path: "template", beforeCommit: "RegisterThing", afterCommit: "UpdateCertificate" },
  ] as const;
  const vendOn = (path: "direct" | "template", serial: string, csr: string) =>
    path === "direct"
      ? vend(serial, csr)
      : requestCertificate({
          apiUrl: stack.endpoints.api,
          serialNumber: serial,
          productKey: "vc-template",
          secret: templateProduct.secretFor(serial),
          keyMode: "csr",
          csr,
        });
  const nextOn = (path: "direct" | "template") =>
    path === "direct" ? nextSerial() : (templateSerials[t++] ?? assert.fail("out of serials"));

  for (const { path, beforeCommit, afterCommit } of paths) {
    for (const operator of ["revoke", "disable"] as const) {
      it(`${path} path: ${operator} between ${beforeCommit} and the commit wins, for 5 of 5 devices (before: 0 of 10)`, async () => {
        const before = await certificateCount();
        for (let i = 0; i < 5; i++) {
          const serial = nextOn(path);
          const gate = stack.iot.faults.hold(beforeCommit);
          const answer = vendOn(path, serial, opensslCsr(serial).csrPem);
          await gate.reached;
          if (operator === "revoke") await revokeDevice(stack.services, serial, "stolen");
          else await disableDevice(stack.services, serial, "lost");
          gate.release();
          const res = await answer;
          assert.equal(res.status, 403, JSON.stringify(res.body));
          const device = await stack.services.registry.getDevice(serial);
          assert.equal(device?.status, operator === "revoke" ? "revoked" : "disabled");
          assert.equal(device?.certificateId, undefined);
        }
        assert.equal(await certificateCount(), before, "every losing flow destroyed its certificate");
      });
    }

    it(`${path} path: a revoke between the commit and the activation (${afterCommit}) leaves the certificate REVOKED`, async () => {
      const serial = nextOn(path);
      const gate = stack.iot.faults.hold(afterCommit);
      const answer = vendOn(path, serial, opensslCsr(serial).csrPem);
      await gate.reached;
      await revokeDevice(stack.services, serial, "stolen");
      gate.release();
      const res = await answer;
      assert.equal(res.status, 403);
      const device = await stack.services.registry.getDevice(serial);
      assert.equal(device?.status, "revoked");
      assert.equal(await statusOf(device!.certificateId!), "REVOKED");
    });
  }

  it("never re-activates a certificate an operator set INACTIVE (before: a retry re-activated it)", async () => {
    const serial = nextSerial();
    const { csrPem } = opensslCsr(serial);
    const first = await vend(serial, csrPem);
    assert.equal(first.status, 201);
    const { certificateId } = first.body as { certificateId: string };
    await stack.iotClient.send(new UpdateCertificateCommand({ certificateId, newStatus: "INACTIVE" }));
    const retry = await vend(serial, csrPem);
    assert.equal(retry.status, 403, JSON.stringify(retry.body));
    assert.equal(await statusOf(certificateId), "INACTIVE");
  });

  it("a certificate that no longer exists is not a revocation: the device provisions again (before: 403, and 409 with a new key)", async () => {
    for (const sameKey of [true, false]) {
      const serial = nextSerial();
      const { csrPem } = opensslCsr(serial);
      const first = await vend(serial, csrPem);
      assert.equal(first.status, 201);
      const { certificateId } = first.body as { certificateId: string };
      // An operator deletes the certificate in AWS IoT (or a crash lost it).
      const arn = `arn:aws:iot:${stack.endpoints.region}:${stack.endpoints.accountId}:cert/${certificateId}`;
      await stack.iotClient.send(new UpdateCertificateCommand({ certificateId, newStatus: "INACTIVE" }));
      await stack.iotClient.send(new DetachThingPrincipalCommand({ thingName: serial, principal: arn }));
      await stack.iotClient.send(new DeleteCertificateCommand({ certificateId, forceDelete: true }));
      const again = await vend(serial, sameKey ? csrPem : opensslCsr(serial).csrPem);
      assert.equal(again.status, 201, JSON.stringify(again.body));
      const fresh = (again.body as { certificateId: string }).certificateId;
      assert.equal(await statusOf(fresh), "ACTIVE");
      const device = await stack.services.registry.getDevice(serial);
      assert.equal(device?.certificateId, fresh);
      assert.equal(device?.status, "provisioned");
    }
  });

  it("20 concurrent first requests with one key all get the same certificate (before: 1×201, 19×409 without Retry-After)", async () => {
    const serial = nextSerial();
    const { csrPem } = opensslCsr(serial);
    // Each device retries a 409 after its Retry-After, as firmware does; a request that waited for
    // the first flow answers 200 at once (how many wait rather than 409 depends on the machine's load).
    const device = async () => {
      for (let attempt = 0; attempt < 10; attempt++) {
        const res = await vend(serial, csrPem);
        if (res.status !== 409) return res;
        assert.ok(Number(res.headers.get("retry-after")) > 0, "a 409 carries Retry-After");
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.fail("still in progress after 10 tries");
    };
    const answers = await Promise.all(Array.from({ length: 20 }, device));
    const ids = new Set<string>();
    for (const res of answers) {
      assert.ok(res.status === 201 || res.status === 200, `${res.status} ${JSON.stringify(res.body)}`);
      ids.add((res.body as { certificateId: string }).certificateId);
    }
    assert.equal(ids.size, 1, "one certificate");
    assert.equal(
      answers.filter((r) => r.status === 201).length,
      1,
      "one flow made it; the others got it (200)",
    );
  });

  it("a 409 for another key's flow in progress carries Retry-After", async () => {
    const serial = nextSerial();
    const gate = stack.iot.faults.hold("AttachThingPrincipal");
    const first = vend(serial, opensslCsr(serial).csrPem);
    await gate.reached;
    const other = await vend(serial, opensslCsr(serial).csrPem);
    gate.release();
    assert.equal(other.status, 409);
    assert.equal((other.body as { error: { code: string } }).error.code, "PROVISIONING_IN_PROGRESS");
    assert.ok(Number(other.headers.get("retry-after")) > 0);
    assert.equal((await first).status, 201);
  });

  it("never takes over an unrelated thing of the serial's name (before: its attributes were replaced and the certificate attached)", async () => {
    const serial = nextSerial();
    await stack.iotClient.send(
      new CreateThingCommand({
        thingName: serial,
        attributePayload: { attributes: { owner: "another-app" } },
      }),
    );
    const before = await certificateCount();
    const res = await vend(serial, opensslCsr(serial).csrPem);
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal((res.body as { error: { code: string } }).error.code, "THING_NAME_TAKEN");
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: serial }));
    assert.deepEqual(
      thing.attributes,
      { owner: "another-app" },
      "the other application's thing is untouched",
    );
    const principals = await stack.iotClient.send(new ListThingPrincipalsCommand({ thingName: serial }));
    assert.deepEqual(principals.principals ?? [], []);
    assert.equal(await certificateCount(), before, "the refused flow destroyed its certificate");
    assert.equal((await stack.services.registry.getDevice(serial))?.status, "registered");
  });

  it("refuses `replace` for a product-secret product (one secret for every serial could take devices over)", async () => {
    await assert.rejects(
      createProduct(stack.services, {
        productKey: "vc-shared",
        name: "Shared secret",
        authMode: "product-secret",
        reprovision: "replace",
      }),
      /register-once/,
    );
    assert.equal(await stack.services.registry.getProduct("vc-shared"), undefined);
  });
});
