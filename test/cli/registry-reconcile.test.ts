import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  DeleteCertificateCommand,
  DescribeCertificateCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  ListAttachedPoliciesCommand,
  UpdateCertificateCommand,
} from "@aws-sdk/client-iot";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { disableDevice } from "#core/registry/manage-devices.ts";
import type { Device } from "#core/registry/model.ts";
import type { Finding } from "#core/registry/reconcile-devices.ts";
import { DEVICE_POLICY_NAME } from "#templates/catalog.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";
import { runOnramp } from "#test/support/run-cli.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type Report = { checked: number; findings: Finding[]; dryRun: boolean };

/**
 * `onramp registry reconcile` against the local stack: each kind of drift is made the way a crash,
 * a failed undo or an operator's change in AWS IoT makes it (real SDK calls to the emulator, real
 * registry writes), then the CLI reports it (dry run) and repairs it.
 */
describe("onramp registry reconcile", () => {
  let stack: Stack;
  let dir: string;
  let endpoints: string;
  let product: Awaited<ReturnType<typeof seedProduct>>;
  const serials = Array.from({ length: 12 }, (_, i) => `RC-${String(i).padStart(4, "0")}`);
  let n = 0;
  const nextSerial = () => serials[n++] ?? assert.fail("out of serials");

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-reconcile-"));
    endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    // On a RegisterThing template (policy on the certificate, UpdateCertificate at the end): the
    // repairs below are of that path's steps; the direct path's are in test/vending/vend-faults.test.ts.
    product = await seedProduct(
      stack.services,
      { productKey: "rc-product", name: "Reconcile", templateName: "cvm-device-certificate-policy" },
      serials,
    );
  });
  after(async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const reconcile = async (...args: string[]) => {
    const run = await runOnramp("registry", "reconcile", ...args, "--json", "--endpoints", endpoints);
    assert.equal(run.error, undefined, String(run.error));
    return { ...(JSON.parse(run.stdout) as Report), exitCode: run.exitCode };
  };
  const vend = async (serial: string) => {
    const res = await requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: "rc-product",
      secret: product.secretFor(serial),
      keyMode: "csr",
      csr: opensslCsr(serial).csrPem,
    });
    return res;
  };
  const device = async (serial: string) => (await stack.services.registry.getDevice(serial)) as Device;
  const statusOf = async (certificateId: string) => {
    try {
      const out = await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }));
      return out.certificateDescription?.status;
    } catch (error) {
      if ((error as Error).name === "ResourceNotFoundException") return "GONE";
      throw error;
    }
  };
  const arnOf = (certificateId: string) =>
    `arn:aws:iot:${stack.endpoints.region}:${stack.endpoints.accountId}:cert/${certificateId}`;

  it("a record naming a deleted certificate goes back to registered, after a dry run that changes nothing", async () => {
    const serial = nextSerial();
    const { certificateId } = (await vend(serial)).body as { certificateId: string };
    await stack.iotClient.send(new UpdateCertificateCommand({ certificateId, newStatus: "INACTIVE" }));
    await stack.iotClient.send(
      new DetachThingPrincipalCommand({ thingName: serial, principal: arnOf(certificateId) }),
    );
    await stack.iotClient.send(new DeleteCertificateCommand({ certificateId, forceDelete: true }));

    const dry = await reconcile(serial, "--dry-run");
    assert.equal(dry.exitCode, 3);
    assert.deepEqual(
      dry.findings.map((f) => [f.kind, f.repaired]),
      [["stale-certificate", false]],
    );
    assert.equal((await device(serial)).status, "provisioned", "a dry run changes nothing");

    const fixed = await reconcile(serial);
    assert.equal(fixed.exitCode, 0);
    assert.deepEqual(
      fixed.findings.map((f) => [f.kind, f.repaired]),
      [["stale-certificate", true]],
    );
    assert.equal((await device(serial)).status, "registered");
    assert.equal((await vend(serial)).status, 201, "the device provisions again");
    assert.deepEqual((await reconcile(serial)).findings, [], "nothing left");
  });

  it("completes a commit that was never activated and lost its attachments", async () => {
    const serial = nextSerial();
    stack.iot.faults.inject({ operation: "UpdateCertificate", error: "InternalFailureException", times: 3 });
    assert.equal((await vend(serial)).status, 503);
    stack.iot.faults.clear();
    const { certificateId } = await device(serial);
    assert.ok(certificateId);
    await stack.iotClient.send(
      new DetachPolicyCommand({ policyName: DEVICE_POLICY_NAME, target: arnOf(certificateId) }),
    );

    const report = await reconcile("--product-key", "rc-product");
    const mine = report.findings.filter((f) => f.serialNumber === serial).map((f) => f.kind);
    assert.deepEqual(mine, ["missing-attachments", "not-activated"]);
    assert.equal(await statusOf(certificateId), "ACTIVE");
    const policies = await stack.iotClient.send(
      new ListAttachedPoliciesCommand({ target: arnOf(certificateId) }),
    );
    assert.deepEqual(
      policies.policies?.map((p) => p.policyName),
      [DEVICE_POLICY_NAME],
    );
    assert.equal((await device(serial)).activatedCertificateId, certificateId);
  });

  it("re-applies a disable that AWS IoT lost, and only reports an operator's deactivation", async () => {
    const disabled = nextSerial();
    const { certificateId } = (await vend(disabled)).body as { certificateId: string };
    await disableDevice(stack.services, disabled, "lost");
    await stack.iotClient.send(new UpdateCertificateCommand({ certificateId, newStatus: "ACTIVE" }));
    const deactivated = nextSerial();
    const other = ((await vend(deactivated)).body as { certificateId: string }).certificateId;
    await stack.iotClient.send(new UpdateCertificateCommand({ certificateId: other, newStatus: "INACTIVE" }));

    const first = await reconcile(disabled);
    assert.deepEqual(
      first.findings.map((f) => f.kind),
      ["status-mismatch"],
    );
    assert.equal(await statusOf(certificateId), "INACTIVE");
    const second = await reconcile(deactivated);
    assert.deepEqual(
      second.findings.map((f) => [f.kind, f.repaired]),
      [["deactivated-in-aws-iot", false]],
    );
    assert.equal(second.exitCode, 3);
    assert.equal(await statusOf(other), "INACTIVE", "an operator's INACTIVE is never undone");
  });

  it("settles an expired claim of a crashed vend: its certificate destroyed, the claim released", async () => {
    const serial = nextSerial();
    const { csrPem } = opensslCsr(serial);
    const made = await stack.iotClient.send(
      new CreateCertificateFromCsrCommand({ certificateSigningRequest: csrPem, setAsActive: false }),
    );
    const before = await device(serial);
    const claim = {
      id: "crashed",
      flow: "vend" as const,
      publicKeyFingerprint: "a".repeat(64),
      expiresAt: Date.now() - 1,
    };
    assert.ok(await stack.services.registry.claimDevice(before, claim, Date.now()));
    await stack.services.registry.recordClaimCertificate(serial, claim.id, made.certificateId!);

    const report = await reconcile(serial);
    assert.deepEqual(
      report.findings.map((f) => [f.kind, f.repaired]),
      [["expired-claim", true]],
    );
    assert.equal(await statusOf(made.certificateId!), "GONE");
    assert.equal((await device(serial)).claim, undefined);
    assert.equal((await vend(serial)).status, 201);
  });

  it("destroys a certificate attached to a device's thing that no record names", async () => {
    const serial = nextSerial();
    assert.equal((await vend(serial)).status, 201);
    const intruder = await stack.iotClient.send(
      new CreateCertificateFromCsrCommand({
        certificateSigningRequest: opensslCsr(serial).csrPem,
        setAsActive: true,
      }),
    );
    await stack.iotClient.send(
      new AttachThingPrincipalCommand({ thingName: serial, principal: intruder.certificateArn }),
    );
    const report = await reconcile(serial);
    assert.deepEqual(
      report.findings.map((f) => [f.kind, f.certificateId]),
      [["unrecorded-certificate", intruder.certificateId]],
    );
    assert.equal(await statusOf(intruder.certificateId!), "GONE");
    assert.equal(await statusOf((await device(serial)).certificateId!), "ACTIVE", "the device's own stays");
  });

  it("--all deletes certificates made for a device's key and never recorded (the crash window after creation)", async () => {
    const serial = nextSerial();
    // A vend crashed right after CreateCertificateFromCsr; the device retried with the same key.
    const { csrPem } = opensslCsr(serial);
    const orphan = await stack.iotClient.send(
      new CreateCertificateFromCsrCommand({ certificateSigningRequest: csrPem, setAsActive: false }),
    );
    const retried = await requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: "rc-product",
      secret: product.secretFor(serial),
      keyMode: "csr",
      csr: csrPem,
    });
    assert.equal(retried.status, 201);
    const stranger = await stack.iotClient.send(
      new CreateCertificateFromCsrCommand({
        certificateSigningRequest: opensslCsr("not-a-serial-of-ours").csrPem,
        setAsActive: false,
      }),
    );
    const report = await reconcile("--all");
    const orphans = report.findings.filter((f) => f.kind === "orphan-certificate");
    assert.deepEqual(
      orphans.map((f) => f.certificateId),
      [orphan.certificateId],
    );
    assert.equal(await statusOf(orphan.certificateId!), "GONE");
    assert.equal(await statusOf(stranger.certificateId!), "INACTIVE", "not ours: left alone");
    // What is left is the earlier test's operator deactivation, reported and never undone.
    assert.deepEqual(
      report.findings.filter((f) => !f.repaired).map((f) => f.kind),
      ["deactivated-in-aws-iot"],
    );
    assert.equal(report.exitCode, 3);
  });

  it("needs exactly one scope and names an unknown product or serial", async () => {
    for (const args of [[], ["RC-0001", "--all"], ["--product-key", "x", "--all"]]) {
      const run = await runOnramp("registry", "reconcile", ...args, "--endpoints", endpoints);
      assert.match(String(run.error), /exactly one/);
    }
    const unknown = await runOnramp(
      "registry",
      "reconcile",
      "--product-key",
      "nope",
      "--endpoints",
      endpoints,
    );
    assert.match(String(unknown.error), /Unknown product nope/);
    const missing = await runOnramp("registry", "reconcile", "NOPE-1", "--endpoints", endpoints);
    assert.match(String(missing.error), /No device with serial number NOPE-1/);
  });
});
