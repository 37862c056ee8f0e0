import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DescribeCertificateCommand,
  DescribeThingCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
  RegisterCertificateCommand,
} from "@aws-sdk/client-iot";
import { AwsCaRegistry } from "#adapters/iot-ca-registry.ts";
import { AwsIotProvisioning } from "#adapters/iot-provisioning.ts";
import { DependencyUnavailableError } from "#core/errors.ts";
import { registerCaCertificate } from "#core/jitr/register-ca-certificate.ts";
import type { Logger } from "#core/logger.ts";
import { CertificateIssuer, createKeyPair, createSelfSignedCa } from "#core/pki/issue.ts";
import { disableDevice, enableDevice, revokeDevice } from "#core/registry/manage-devices.ts";
import { makeJitrHandler } from "#handlers/jitr-registration.ts";
import { DEVICE_POLICY_NAME } from "#templates/catalog.ts";
import { createDevicePolicy } from "#test/support/device-ca.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type LogEntry = { level: string; message: string } & Record<string, unknown>;

const eventFixture = JSON.parse(
  readFileSync(new URL("../fixtures/events/jitr-certificate-registered.json", import.meta.url), "utf8"),
) as Record<string, unknown>;
const malformedFixture = JSON.parse(
  readFileSync(new URL("../fixtures/events/jitr-malformed.json", import.meta.url), "utf8"),
) as unknown;

/** A logger that keeps what it was told, to check the recorded reasons (and that no PEM leaks). */
function recordingLogger(entries: LogEntry[]): Logger {
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      entries.push({ level, message, ...Object.assign({}, ...extra) });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/**
 * Just-in-time registration against the local stack: a CA registered with the IoT emulator (with
 * a verification certificate), device certificates signed by it and registered PENDING_ACTIVATION
 * as IoT Core does when a device first connects, and the real handler with the real IoTClient.
 */
describe("JITR registration handler against the local stack", () => {
  let stack: Stack;
  let trusted: CertificateIssuer;
  let untrusted: CertificateIssuer;
  let handler: ReturnType<typeof makeJitrHandler>;
  const logs: LogEntry[] = [];
  let n = 0;
  const serials = Array.from({ length: 32 }, (_, i) => `J-${String(i).padStart(4, "0")}`);

  before(async () => {
    stack = await startTestStack({ dynamoFaultInjection: true });
    await createDevicePolicy(stack.iotClient);
    const registry = { iot: new AwsCaRegistry(stack.iotClient) };
    const cas = await Promise.all([
      createSelfSignedCa({ subject: { commonName: "JITR trusted CA" } }),
      createSelfSignedCa({ subject: { commonName: "JITR other CA" }, keyAlgorithm: "RSA-2048" }),
    ]);
    for (const ca of cas) {
      const result = await registerCaCertificate(registry, {
        caCertPem: ca.certPem,
        caPrivateKeyPem: ca.privateKeyPem,
      });
      assert.equal(result.registered, true);
      assert.equal(result.description?.autoRegistrationStatus, "ENABLE");
    }
    trusted = await CertificateIssuer.create(cas[0]);
    untrusted = await CertificateIssuer.create(cas[1]);
    await seedProduct(
      stack.services,
      { productKey: "jitr-product", name: "JITR", trustedCaIds: [trusted.caCertificateId] },
      serials,
    );
    await seedProduct(stack.services, { productKey: "no-trust", name: "Trusts no CA" }, ["U-0001"]);
    handler = makeJitrHandler({
      registry: stack.services.registry,
      templates: stack.services.templates,
      iot: new AwsIotProvisioning(stack.iotClient),
      logger: recordingLogger(logs),
    });
  });
  after(() => stack.stop());

  const nextSerial = () => serials[n++]!;

  /** What IoT Core does on a device's first connection: register its certificate PENDING_ACTIVATION. */
  const connect = async (commonName: string, issuer: CertificateIssuer = trusted) => {
    const keys = await createKeyPair("EC-P256");
    const issued = await issuer.issue({ subjectPublicKey: keys.publicKeyPem, subject: { commonName } });
    const { certificate } = await stack.iot.registerCertificateFromCa(issued.certificatePem);
    assert.equal(certificate.status, "PENDING_ACTIVATION");
    return certificate.certificateId;
  };
  const eventFor = (certificateId: string, issuer: CertificateIssuer = trusted) => ({
    ...eventFixture,
    certificateId,
    caCertificateId: issuer.caCertificateId,
    timestamp: Date.now(),
  });
  const statusOf = async (certificateId: string) =>
    (await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }))).certificateDescription
      ?.status;
  const thingExists = (thingName: string) =>
    stack.iotClient.send(new DescribeThingCommand({ thingName })).then(
      () => true,
      (error: Error) => {
        if (error.name === "ResourceNotFoundException") return false;
        throw error;
      },
    );
  const policiesOf = async (certificateId: string) => {
    const arn = (await stack.iotClient.send(new DescribeCertificateCommand({ certificateId })))
      .certificateDescription?.certificateArn;
    const out = await stack.iotClient.send(new ListAttachedPoliciesCommand({ target: arn }));
    return (out.policies ?? []).map((p) => p.policyName);
  };
  const lastLog = (certificateId: string) => logs.filter((l) => l.certificateId === certificateId).at(-1);

  it("activates a registered device: thing, policy, ACTIVE certificate, registry provisioned", async () => {
    const serial = nextSerial();
    const certificateId = await connect(serial);
    assert.deepEqual(await handler(eventFor(certificateId)), { outcome: "activated" });

    assert.equal(await statusOf(certificateId), "ACTIVE");
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: serial }));
    assert.equal(thing.attributes?.productKey, "jitr-product");
    assert.equal(thing.attributes?.serialNumber, serial);
    const principals = await stack.iotClient.send(new ListThingPrincipalsCommand({ thingName: serial }));
    assert.deepEqual(principals.principals, [thing.thingArn!.replace(/thing\/.*/, `cert/${certificateId}`)]);
    assert.deepEqual(await policiesOf(certificateId), [DEVICE_POLICY_NAME]);
    const device = await stack.services.registry.getDevice(serial);
    assert.equal(device?.status, "provisioned");
    assert.equal(device?.certificateId, certificateId);
    assert.equal(device?.thingName, serial);
    assert.equal(device?.claim, undefined);
    assert.ok(
      logs.every((l) => !JSON.stringify(l).includes("BEGIN")),
      "no PEM in the logs",
    );

    // The event repeats (reconnect, duplicate delivery): a no-op.
    const registerThingCalls = stack.iot.faults.calls("RegisterThing");
    assert.deepEqual(await handler(eventFor(certificateId)), { outcome: "already-active" });
    assert.equal(stack.iot.faults.calls("RegisterThing"), registerThingCalls);
    assert.equal((await stack.services.registry.getDevice(serial))?.version, device?.version);
  });

  it("gives two concurrent deliveries of one event one provisioning", async () => {
    const serial = nextSerial();
    const certificateId = await connect(serial);
    const results = await Promise.allSettled([
      handler(eventFor(certificateId)),
      handler(eventFor(certificateId)),
    ]);
    const outcomes = results.map((r) => (r.status === "fulfilled" ? r.value.outcome : String(r.reason)));
    assert.ok(outcomes.includes("activated"), JSON.stringify(outcomes));
    // The other one is a duplicate: answered, not an error (no retry, no dead letter).
    assert.ok(
      outcomes.every((o) => o === "activated" || o === "in-progress" || o === "already-active"),
      JSON.stringify(outcomes),
    );
    assert.equal(await statusOf(certificateId), "ACTIVE");
    assert.equal((await stack.services.registry.getDevice(serial))?.certificateId, certificateId);
    // The delivery that lost is retried and finds the work done.
    assert.deepEqual(await handler(eventFor(certificateId)), { outcome: "already-active" });
  });

  it("activates a device certificate made with openssl as in seed 004 (RSA key, x509 -req)", async () => {
    const serial = "OSSL-0001";
    const dir = mkdtempSync(join(tmpdir(), "onramp-jitr-"));
    try {
      const ca = await createSelfSignedCa({ subject: { commonName: "openssl-signed devices" } });
      writeFileSync(join(dir, "rootCA.pem"), ca.certPem);
      writeFileSync(join(dir, "rootCA.key"), ca.privateKeyPem);
      await registerCaCertificate(
        { iot: new AwsCaRegistry(stack.iotClient) },
        { caCertPem: ca.certPem, caPrivateKeyPem: ca.privateKeyPem },
      );
      await seedProduct(
        stack.services,
        { productKey: "openssl-product", name: "openssl", trustedCaIds: [ca.certificateId] },
        [serial],
      );
      const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
      run("genrsa", "-out", "deviceCert.key", "2048");
      run("req", "-new", "-key", "deviceCert.key", "-out", "deviceCert.csr", "-subj", `/CN=${serial}`);
      run(
        ...["x509", "-req", "-in", "deviceCert.csr", "-CA", "rootCA.pem", "-CAkey", "rootCA.key"],
        ...["-CAcreateserial", "-out", "deviceCert.crt", "-days", "365", "-sha256"],
      );
      const { certificate } = await stack.iot.registerCertificateFromCa(
        readFileSync(join(dir, "deviceCert.crt"), "utf8"),
      );
      const event = {
        ...eventFixture,
        certificateId: certificate.certificateId,
        caCertificateId: ca.certificateId,
      };
      assert.deepEqual(await handler(event), { outcome: "activated" });
      assert.equal(await statusOf(certificate.certificateId), "ACTIVE");
      assert.equal((await stack.services.registry.getDevice(serial))?.status, "provisioned");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("revokes the certificate of a serial that is not in the registry, and logs why", async () => {
    const certificateId = await connect("NOT-IN-REGISTRY");
    assert.deepEqual(await handler(eventFor(certificateId)), {
      outcome: "rejected",
      reason: "unknown-device",
    });
    assert.equal(await statusOf(certificateId), "REVOKED");
    assert.equal(await thingExists("NOT-IN-REGISTRY"), false);
    const log = lastLog(certificateId);
    assert.equal(log?.reason, "unknown-device");
    assert.equal(log?.serialNumber, "NOT-IN-REGISTRY");
    // Repeated: the certificate is revoked already, nothing more happens.
    assert.deepEqual(await handler(eventFor(certificateId)), {
      outcome: "rejected",
      reason: "certificate-revoked",
    });
  });

  it("revokes a certificate whose product does not trust the CA; leaves another application's CA alone", async () => {
    const notTrusted = await connect("U-0001");
    assert.deepEqual(await handler(eventFor(notTrusted)), { outcome: "rejected", reason: "untrusted-ca" });
    assert.equal(await statusOf(notTrusted), "REVOKED");
    assert.equal((await stack.services.registry.getDevice("U-0001"))?.status, "registered");

    // A CA no product trusts belongs to another application in the account: its certificates
    // are none of ours (before: revoked, bricking the other application's devices).
    const serial = nextSerial();
    const otherCa = await connect(serial, untrusted);
    assert.deepEqual(await handler(eventFor(otherCa, untrusted)), { outcome: "ignored" });
    assert.equal(await statusOf(otherCa), "PENDING_ACTIVATION");
    assert.equal(await thingExists(serial), false);
    const ignored = logs.find((l) => l.certificateId === otherCa);
    assert.equal(ignored?.message, "jitr: certificate of a CA no product trusts, left untouched");

    // An event naming a CA of ours other than the one that signed the certificate.
    const mismatched = await connect(nextSerial(), trusted);
    assert.deepEqual(await handler(eventFor(mismatched, untrusted)), {
      outcome: "rejected",
      reason: "ca-mismatch",
    });
    assert.equal(await statusOf(mismatched), "REVOKED");
  });

  it("revokes the certificate of a revoked device; leaves a disabled one's pending until enabled", async () => {
    for (const status of ["disabled", "revoked"] as const) {
      const serial = nextSerial();
      await stack.services.registry.setDeviceStatus(serial, status, { from: ["registered"], reason: "test" });
      const certificateId = await connect(serial);
      assert.deepEqual(await handler(eventFor(certificateId)), {
        outcome: "rejected",
        reason: `device-${status}`,
      });
      // Disabling is reversible, and a JITR certificate is burned into the device: revoking it
      // would brick the device for good.
      assert.equal(await statusOf(certificateId), status === "revoked" ? "REVOKED" : "PENDING_ACTIVATION");
      assert.equal(await thingExists(serial), false);
      assert.equal((await stack.services.registry.getDevice(serial))?.status, status);
      assert.equal(lastLog(certificateId)?.serialNumber, serial);
      if (status === "disabled") {
        await stack.services.registry.setDeviceStatus(serial, "registered", { from: ["disabled"] });
        assert.deepEqual(await handler(eventFor(certificateId)), { outcome: "activated" });
        assert.equal(await statusOf(certificateId), "ACTIVE");
      }
    }
  });

  it("leaves a disabled device's own certificate inactive (not revoked), so enabling it works", async () => {
    const serial = nextSerial();
    const certificateId = await connect(serial);
    assert.deepEqual(await handler(eventFor(certificateId)), { outcome: "activated" });
    await disableDevice(stack.services, serial, "test");
    assert.equal(await statusOf(certificateId), "INACTIVE");
    assert.deepEqual(await handler(eventFor(certificateId)), {
      outcome: "rejected",
      reason: "device-disabled",
    });
    assert.equal(await statusOf(certificateId), "INACTIVE");
    await enableDevice(stack.services, serial);
    assert.equal(await statusOf(certificateId), "ACTIVE");
  });

  it("revokes a second certificate for a provisioned device and keeps the first one", async () => {
    const serial = nextSerial();
    const first = await connect(serial);
    assert.deepEqual(await handler(eventFor(first)), { outcome: "activated" });
    const second = await connect(serial);
    assert.deepEqual(await handler(eventFor(second)), {
      outcome: "rejected",
      reason: "provisioned-with-another-certificate",
    });
    assert.equal(await statusOf(second), "REVOKED");
    assert.equal(await statusOf(first), "ACTIVE");
    assert.equal((await stack.services.registry.getDevice(serial))?.certificateId, first);
  });

  it("revokes a certificate whose CN is not a serial number", async () => {
    for (const commonName of ["has spaces in it", undefined]) {
      const keys = await createKeyPair("EC-P256");
      const issued = await trusted.issue({
        subjectPublicKey: keys.publicKeyPem,
        subject: commonName ? { commonName } : { organization: "No CN Inc" },
      });
      const { certificate } = await stack.iot.registerCertificateFromCa(issued.certificatePem);
      assert.deepEqual(await handler(eventFor(certificate.certificateId)), {
        outcome: "rejected",
        reason: "bad-subject",
      });
      assert.equal(await statusOf(certificate.certificateId), "REVOKED");
    }
  });

  it("works with a certificate registered through RegisterCertificate as PENDING_ACTIVATION", async () => {
    const serial = nextSerial();
    const keys = await createKeyPair("EC-P256");
    const issued = await trusted.issue({
      subjectPublicKey: keys.publicKeyPem,
      subject: { commonName: serial },
    });
    const registered = await stack.iotClient.send(
      new RegisterCertificateCommand({
        certificatePem: issued.certificatePem,
        caCertificatePem: trusted.caCertPem,
        status: "PENDING_ACTIVATION",
      }),
    );
    assert.equal(await statusOf(registered.certificateId!), "PENDING_ACTIVATION");
    assert.deepEqual(await handler(eventFor(registered.certificateId!)), { outcome: "activated" });
    assert.equal(await statusOf(registered.certificateId!), "ACTIVE");
  });

  it("undoes its steps when RegisterThing fails, leaves the certificate pending, and the next delivery succeeds", async () => {
    const serial = nextSerial();
    const certificateId = await connect(serial);
    stack.iot.faults.inject({ operation: "RegisterThing", error: "InternalFailureException", times: 1 });
    await assert.rejects(handler(eventFor(certificateId)), DependencyUnavailableError);
    stack.iot.faults.clear();
    assert.equal(await statusOf(certificateId), "PENDING_ACTIVATION");
    assert.equal(await thingExists(serial), false);
    assert.deepEqual(await policiesOf(certificateId), []);
    const device = await stack.services.registry.getDevice(serial);
    assert.equal(device?.status, "registered");
    assert.equal(device?.claim, undefined, "claim released");
    assert.equal(
      logs.find((l) => l.certificateId === certificateId && l.message.includes("undoing"))?.step,
      "register-thing",
    );

    assert.deepEqual(await handler(eventFor(certificateId)), { outcome: "activated" });
    assert.equal(await statusOf(certificateId), "ACTIVE");
    assert.equal(await thingExists(serial), true);
  });

  it("undoes RegisterThing's attachments when the registry commit fails, and the retry succeeds", async () => {
    const serial = nextSerial();
    const certificateId = await connect(serial);
    stack.dynamoFaults!.inject({ operation: "UpdateItem", bodyIncludes: ":provisioned", times: 10 });
    await assert.rejects(handler(eventFor(certificateId)));
    stack.dynamoFaults!.clear();
    assert.notEqual(await statusOf(certificateId), "ACTIVE");
    assert.notEqual(await statusOf(certificateId), "REVOKED");
    assert.equal(await thingExists(serial), false);
    assert.deepEqual(await policiesOf(certificateId), []);
    const device = await stack.services.registry.getDevice(serial);
    assert.equal(device?.status, "registered");
    assert.equal(device?.claim, undefined);

    assert.deepEqual(await handler(eventFor(certificateId)), { outcome: "activated" });
    assert.equal(await statusOf(certificateId), "ACTIVE");
  });

  it("activates on the next delivery when activation failed after the registry commit", async () => {
    const serial = nextSerial();
    const certificateId = await connect(serial);
    stack.iot.faults.inject({ operation: "UpdateCertificate", error: "InternalFailureException", times: 1 });
    await assert.rejects(handler(eventFor(certificateId)), DependencyUnavailableError);
    stack.iot.faults.clear();
    const device = await stack.services.registry.getDevice(serial);
    assert.equal(device?.status, "provisioned");
    assert.equal(device?.certificateId, certificateId);
    assert.notEqual(await statusOf(certificateId), "ACTIVE");

    assert.deepEqual(await handler(eventFor(certificateId)), { outcome: "activated" });
    assert.equal(await statusOf(certificateId), "ACTIVE");
    assert.deepEqual(await policiesOf(certificateId), [DEVICE_POLICY_NAME]);
  });

  it("an operator's revoke or disable between RegisterThing and the commit wins (before: provisioned, ACTIVE)", async () => {
    for (const operator of ["revoke", "disable"] as const) {
      const serial = nextSerial();
      const certificateId = await connect(serial);
      const gate = stack.iot.faults.hold("RegisterThing");
      const flow = handler(eventFor(certificateId));
      await gate.reached;
      if (operator === "revoke") await revokeDevice(stack.services, serial, "stolen");
      else await disableDevice(stack.services, serial, "lost");
      gate.release();
      assert.deepEqual(await flow, {
        outcome: "rejected",
        reason: operator === "revoke" ? "device-revoked" : "device-disabled",
      });
      const device = await stack.services.registry.getDevice(serial);
      if (operator === "revoke") {
        assert.equal(device?.status, "revoked");
        assert.equal(device?.certificateId, undefined);
        assert.equal(await statusOf(certificateId), "REVOKED");
        assert.equal(await thingExists(serial), false, "the losing flow undid its thing");
      } else {
        // Disabled: the device keeps its own certificate, INACTIVE, as a provisioned device that
        // was then disabled; enabling it makes it work (a JITR certificate cannot be re-issued).
        assert.equal(device?.status, "disabled");
        assert.equal(device?.certificateId, certificateId);
        assert.equal(await statusOf(certificateId), "INACTIVE");
        await enableDevice(stack.services, serial);
        assert.equal(await statusOf(certificateId), "ACTIVE");
        assert.deepEqual(await policiesOf(certificateId), [DEVICE_POLICY_NAME]);
        assert.equal((await stack.services.registry.getDevice(serial))?.status, "provisioned");
      }
    }
  });

  it("an operator's revoke between the commit and the activation wins (the certificate ends REVOKED)", async () => {
    const serial = nextSerial();
    const certificateId = await connect(serial);
    const gate = stack.iot.faults.hold("UpdateCertificate");
    const flow = handler(eventFor(certificateId));
    await gate.reached;
    // The flow's activation has run and is held: the operator's revoke lands after it.
    await revokeDevice(stack.services, serial, "stolen");
    gate.release();
    assert.deepEqual(await flow, { outcome: "rejected", reason: "device-revoked" });
    assert.equal(await statusOf(certificateId), "REVOKED");
  });

  it("a retry converges: a provisioned certificate found without its thing and policy gets them back", async () => {
    const serial = nextSerial();
    const certificateId = await connect(serial);
    stack.iot.faults.inject({ operation: "UpdateCertificate", error: "InternalFailureException", times: 1 });
    await assert.rejects(handler(eventFor(certificateId)));
    // Lost attachments (before: the retry activated the certificate without them).
    const arn = (await stack.iotClient.send(new DescribeCertificateCommand({ certificateId })))
      .certificateDescription?.certificateArn;
    await stack.iotClient.send(new DetachPolicyCommand({ policyName: DEVICE_POLICY_NAME, target: arn }));
    await stack.iotClient.send(new DetachThingPrincipalCommand({ thingName: serial, principal: arn }));
    assert.deepEqual(await handler(eventFor(certificateId)), { outcome: "activated" });
    assert.equal(await statusOf(certificateId), "ACTIVE");
    assert.deepEqual(await policiesOf(certificateId), [DEVICE_POLICY_NAME]);
    const principals = await stack.iotClient.send(new ListThingPrincipalsCommand({ thingName: serial }));
    assert.deepEqual(principals.principals, [arn]);
    const device = await stack.services.registry.getDevice(serial);
    assert.equal(device?.activatedCertificateId, certificateId);
  });

  it("answers a malformed event as rejected without throwing, and an unknown certificate likewise", async () => {
    for (const event of [malformedFixture, null, "text", { ...eventFixture, timestamp: "now" }]) {
      assert.deepEqual(await handler(event), { outcome: "rejected", reason: "malformed-event" });
    }
    assert.deepEqual(await handler(eventFor("f".repeat(64))), {
      outcome: "rejected",
      reason: "certificate-not-found",
    });
  });
});
