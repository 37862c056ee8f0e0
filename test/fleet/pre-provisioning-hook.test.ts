import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  CreateCertificateFromCsrCommand,
  DescribeCertificateCommand,
  RegisterThingCommand,
} from "@aws-sdk/client-iot";
import {
  authorizeFleetProvisioning,
  defaultFleetHookConfig,
  type FleetHookConfig,
  type FleetHookDeps,
} from "#core/fleet/authorize-fleet-provisioning.ts";
import { preProvisioningEventSchema } from "#core/fleet/pre-provisioning-event.ts";
import type { Logger } from "#core/logger.ts";
import { disableDevice, revokeDevice } from "#core/registry/manage-devices.ts";
import type { Device } from "#core/registry/model.ts";
import type { Registry } from "#core/registry/ports.ts";
import { signFleetRequest } from "#credentials/fleet-signature.ts";
import { makeFleetCommitHandler } from "#handlers/fleet-commit.ts";
import { makePreProvisioningHookHandler } from "#handlers/pre-provisioning-hook.ts";
import { loadProvisioningTemplate, PROVISIONING_TEMPLATES } from "#templates/catalog.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type LogEntry = { level: string; message: string } & Record<string, unknown>;

/** The hook input as AWS IoT sends it (payload version 2020-04-01), from the AWS documentation's shape. */
const fixture = JSON.parse(
  readFileSync(new URL("./fixtures/pre-provisioning-event.json", import.meta.url), "utf8"),
) as { certificatePem: string; parameters: Record<string, string> } & Record<string, unknown>;

const DENY = { allowProvisioning: false };
const ALLOW = { allowProvisioning: true, parameterOverrides: { ProductKey: "pk-fleet" } };

function recordingLogger(entries: LogEntry[]): Logger {
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      entries.push({ level, message, ...Object.assign({}, ...extra) });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

type FleetCertificate = { certificateId: string; certificatePem: string };

/**
 * Fleet provisioning by claim against the local stack, as AWS IoT runs it: the device's new
 * certificate comes from CreateCertificateFromCsr (what `$aws/certificates/create-from-csr/json`
 * does), the pre-provisioning hook decides (the real handler on the real registry), an allowed
 * request runs the `fleet-claim-device` template through RegisterThing (what AWS IoT does after the
 * hook), and the device's first connection arrives as the presence event AWS IoT publishes (the
 * real commit handler). The local MQTT endpoint's fleet API is another issue; every AWS IoT call
 * here goes through the real SDK to the emulator.
 */
describe("fleet provisioning by claim: the hook's claim and the connection's commit", () => {
  let stack: Stack;
  let hook: ReturnType<typeof makePreProvisioningHookHandler>;
  let commit: ReturnType<typeof makeFleetCommitHandler>;
  let deps: FleetHookDeps;
  let secretFor: (serial: string) => string;
  let secretForReplace: (serial: string) => string;
  const logs: LogEntry[] = [];
  const serials = Array.from({ length: 40 }, (_, i) => `F-${String(i).padStart(4, "0")}`);
  let next = 0;
  const nextSerial = () => serials[next++] ?? assert.fail("out of serials");
  const replaceSerials = ["R-0001", "R-0002", "R-0003"];

  before(async () => {
    stack = await startTestStack({ dynamoFaultInjection: true });
    ({ secretFor } = await seedProduct(
      stack.services,
      { productKey: "pk-fleet", name: "Fleet lamp" },
      serials,
    ));
    ({ secretFor: secretForReplace } = await seedProduct(
      stack.services,
      { productKey: "pk-replace", name: "Replaceable", reprovision: "replace" },
      replaceSerials,
    ));
    await seedProduct(stack.services, { productKey: "pk-other", name: "Other" }, []);
    deps = { ...stack.services, config: defaultFleetHookConfig, logger: recordingLogger(logs) };
    hook = makePreProvisioningHookHandler(deps);
    commit = makeFleetCommitHandler({ ...stack.services, logger: recordingLogger(logs) });
  });
  after(async () => {
    await stack?.stop();
  });

  /** A new certificate for the device's CSR, as the fleet provisioning MQTT API makes it. */
  async function newCertificate(serial: string): Promise<FleetCertificate> {
    const { csrPem } = opensslCsr(serial);
    const out = await stack.iotClient.send(
      new CreateCertificateFromCsrCommand({ certificateSigningRequest: csrPem, setAsActive: false }),
    );
    return { certificateId: out.certificateId!, certificatePem: out.certificatePem! };
  }

  function eventFor(serial: string, certificate: FleetCertificate, parameters?: Record<string, string>) {
    return {
      ...fixture,
      certificateId: certificate.certificateId,
      certificatePem: certificate.certificatePem,
      clientId: `claim-${serial}`,
      parameters: parameters ?? { SerialNumber: serial },
    };
  }

  /** What AWS IoT does after an allow: the template with the hook's overrides. */
  async function runTemplate(serial: string, certificate: FleetCertificate, productKey = "pk-fleet") {
    await stack.iotClient.send(
      new RegisterThingCommand({
        templateBody: loadProvisioningTemplate(PROVISIONING_TEMPLATES.fleetClaim),
        parameters: {
          SerialNumber: serial,
          ProductKey: productKey,
          "AWS::IoT::Certificate::Id": certificate.certificateId,
        },
      }),
    );
  }

  /** The device's first connection with its new certificate, as AWS IoT's lifecycle event. */
  const connected = (serial: string, certificate: FleetCertificate) =>
    commit({
      clientId: serial,
      eventType: "connected",
      principalIdentifier: certificate.certificateId,
      timestamp: Date.now(),
      sessionIdentifier: "00000000-0000-0000-0000-000000000000",
      versionNumber: 0,
    });

  const statusOf = async (certificateId: string) => {
    try {
      const out = await stack.iotClient.send(new DescribeCertificateCommand({ certificateId }));
      return out.certificateDescription?.status;
    } catch {
      return "GONE";
    }
  };

  /** The whole flow for one device: certificate, hook, template, first connection. */
  async function provisionThroughFleet(serial: string): Promise<FleetCertificate> {
    const certificate = await newCertificate(serial);
    assert.deepEqual(await hook(eventFor(serial, certificate)), ALLOW);
    await runTemplate(serial, certificate);
    assert.equal((await connected(serial, certificate)).outcome, "committed");
    return certificate;
  }

  it("takes over no device: a second and third certificate for one serial are denied (before: all allowed)", async () => {
    const serial = nextSerial();
    const [first, second, third] = await Promise.all([1, 2, 3].map(() => newCertificate(serial)));
    assert.deepEqual(await hook(eventFor(serial, first!)), ALLOW);
    assert.deepEqual(await hook(eventFor(serial, second!)), DENY);
    assert.deepEqual(await hook(eventFor(serial, third!)), DENY);
    assert.ok(logs.some((l) => l.reason === "provisioning-in-progress" && l.serialNumber === serial));
    // A retried provision request with the first certificate is still allowed.
    assert.deepEqual(await hook(eventFor(serial, first!)), ALLOW);

    await runTemplate(serial, first!);
    assert.equal((await connected(serial, first!)).outcome, "committed");
    const fourth = await newCertificate(serial);
    assert.deepEqual(await hook(eventFor(serial, fourth)), DENY);
    assert.ok(
      logs.some((l) => l.reason === "provisioned-with-another-certificate" && l.serialNumber === serial),
    );
  });

  it("records the outcome in two phases: claim in the hook, commit on the first connection", async () => {
    const serial = nextSerial();
    const certificate = await newCertificate(serial);
    assert.deepEqual(await hook(eventFor(serial, certificate)), ALLOW);
    const claimed = (await stack.services.registry.getDevice(serial)) as Device;
    assert.equal(claimed.status, "registered");
    assert.equal(claimed.claim?.flow, "fleet");
    assert.equal(claimed.claim?.certificateId, certificate.certificateId);

    // A connection before AWS IoT provisioned anything (or with another certificate) commits nothing.
    assert.deepEqual(await connected(serial, certificate), {
      outcome: "ignored",
      reason: "not-provisioned-yet",
    });
    await runTemplate(serial, certificate);
    assert.deepEqual(await connected("F-UNKNOWN", certificate), {
      outcome: "ignored",
      reason: "not-a-device",
    });

    assert.deepEqual(await connected(serial, certificate), {
      outcome: "committed",
      serialNumber: serial,
      certificateId: certificate.certificateId,
    });
    const committed = (await stack.services.registry.getDevice(serial)) as Device;
    assert.equal(committed.status, "provisioned");
    assert.equal(committed.certificateId, certificate.certificateId);
    assert.equal(committed.thingName, serial);
    assert.equal(committed.activatedCertificateId, certificate.certificateId);
    assert.equal(committed.claim, undefined);
    // The event repeats (lifecycle events may be duplicated): nothing changes.
    assert.equal((await connected(serial, certificate)).outcome, "already-committed");
    assert.equal((await stack.services.registry.getDevice(serial))?.version, committed.version);
  });

  it("of 10 concurrent requests with different certificates, exactly one is allowed", async () => {
    const serial = nextSerial();
    const certificates = await Promise.all(Array.from({ length: 10 }, () => newCertificate(serial)));
    const answers = await Promise.all(certificates.map((c) => hook(eventFor(serial, c))));
    assert.equal(answers.filter((a) => a.allowProvisioning).length, 1);
  });

  it("commits a provisioning whose connection event was lost, when the claim expires and another request comes", async () => {
    const serial = nextSerial();
    const shortClaims: FleetHookConfig = { ...defaultFleetHookConfig, claimTtlMs: 1 };
    const shortHook = makePreProvisioningHookHandler({ ...deps, config: shortClaims });
    const certificate = await newCertificate(serial);
    assert.deepEqual(await shortHook(eventFor(serial, certificate)), ALLOW);
    await runTemplate(serial, certificate);
    await new Promise((resolve) => setTimeout(resolve, 5));
    // The claim expired uncommitted, but AWS IoT shows the certificate ACTIVE on the thing: an
    // attacker's request settles it as provisioned and is denied.
    const attacker = await newCertificate(serial);
    assert.deepEqual(await shortHook(eventFor(serial, attacker)), DENY);
    const device = (await stack.services.registry.getDevice(serial)) as Device;
    assert.equal(device.status, "provisioned");
    assert.equal(device.certificateId, certificate.certificateId);
    assert.equal(await statusOf(certificate.certificateId), "ACTIVE");
  });

  it("destroys the certificate of a provisioning that never happened, once its claim expired", async () => {
    const serial = nextSerial();
    const shortHook = makePreProvisioningHookHandler({
      ...deps,
      config: { ...defaultFleetHookConfig, claimTtlMs: 1 },
    });
    const abandoned = await newCertificate(serial);
    assert.deepEqual(await shortHook(eventFor(serial, abandoned)), ALLOW);
    // AWS IoT never ran the template (a template error, throttling): the claim expires.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const retry = await newCertificate(serial);
    assert.deepEqual(await hook(eventFor(serial, retry)), ALLOW);
    assert.equal(await statusOf(abandoned.certificateId), "GONE");
    assert.equal(
      (await stack.services.registry.getDevice(serial))?.claim?.certificateId,
      retry.certificateId,
    );
  });

  it("an operator's revoke between the hook and the commit wins (before: the device ended provisioned)", async () => {
    for (const operator of ["revoke", "disable"] as const) {
      const serial = nextSerial();
      const certificate = await newCertificate(serial);
      assert.deepEqual(await hook(eventFor(serial, certificate)), ALLOW);
      await runTemplate(serial, certificate);
      assert.equal(await statusOf(certificate.certificateId), "ACTIVE");
      if (operator === "revoke") await revokeDevice(stack.services, serial, "stolen");
      else await disableDevice(stack.services, serial, "lost");
      assert.deepEqual(await connected(serial, certificate), {
        outcome: "ignored",
        reason: "no-fleet-claim",
      });
      const device = (await stack.services.registry.getDevice(serial)) as Device;
      assert.equal(device.status, operator === "revoke" ? "revoked" : "disabled");
      assert.equal(device.certificateId, undefined);
      assert.equal(await statusOf(certificate.certificateId), operator === "revoke" ? "REVOKED" : "INACTIVE");
      assert.deepEqual(await hook(eventFor(serial, await newCertificate(serial))), DENY);
    }
  });

  it("re-provisions a `replace` product's device only with the device's own proof", async () => {
    const serial = "R-0001";
    const old = await newCertificate(serial);
    const allowReplace = { allowProvisioning: true, parameterOverrides: { ProductKey: "pk-replace" } };
    assert.deepEqual(await hook(eventFor(serial, old)), allowReplace);
    await runTemplate(serial, old, "pk-replace");
    assert.equal((await connected(serial, old)).outcome, "committed");

    const fresh = await newCertificate(serial);
    const proof = (overrides: Partial<{ secret: string; certificateId: string; timestamp: number }> = {}) => {
      const timestamp = overrides.timestamp ?? Date.now();
      const nonce = randomBytes(12).toString("base64url");
      const fields = {
        serialNumber: serial,
        productKey: "pk-replace",
        timestamp,
        nonce,
        certificateId: overrides.certificateId ?? fresh.certificateId,
      };
      const secret = overrides.secret ?? secretForReplace(serial);
      return {
        SerialNumber: serial,
        Timestamp: String(timestamp),
        Nonce: nonce,
        Signature: signFleetRequest(fields, secret),
      };
    };
    // The claim certificate alone is not enough, nor a wrong secret, another certificate's proof,
    // or a stale timestamp.
    assert.deepEqual(await hook(eventFor(serial, fresh)), DENY);
    assert.deepEqual(await hook(eventFor(serial, fresh, proof({ secret: "not-the-secret-at-all" }))), DENY);
    assert.deepEqual(await hook(eventFor(serial, fresh, proof({ certificateId: old.certificateId }))), DENY);
    assert.deepEqual(await hook(eventFor(serial, fresh, proof({ timestamp: Date.now() - 3_600_000 }))), DENY);
    assert.ok(logs.some((l) => l.reason === "reprovision-proof-invalid" && l.serialNumber === serial));

    const good = proof();
    assert.deepEqual(await hook(eventFor(serial, fresh, good)), allowReplace);
    await runTemplate(serial, fresh, "pk-replace");
    assert.equal((await connected(serial, fresh)).outcome, "committed");
    const device = (await stack.services.registry.getDevice(serial)) as Device;
    assert.equal(device.certificateId, fresh.certificateId);
    assert.equal(await statusOf(old.certificateId), "GONE", "the replaced certificate is destroyed");
    // The same proof again (a replayed request) is refused: its nonce was used.
    const third = await newCertificate(serial);
    assert.deepEqual(await hook(eventFor(serial, third, { ...good })), DENY);
  });

  it("allows a matching ProductKey parameter, denies another product's key", async () => {
    const serial = nextSerial();
    const certificate = await newCertificate(serial);
    assert.deepEqual(
      await hook(eventFor(serial, certificate, { SerialNumber: serial, ProductKey: "pk-other" })),
      DENY,
    );
    assert.deepEqual(
      await hook(eventFor(serial, certificate, { SerialNumber: serial, ProductKey: "pk-missing" })),
      DENY,
    );
    assert.deepEqual(
      await hook(eventFor(serial, certificate, { SerialNumber: serial, ProductKey: "pk-fleet" })),
      ALLOW,
    );
    assert.equal(secretFor(serial).length > 0, true);
  });

  it("denies an unknown serial, a disabled and a revoked device", async () => {
    const disabled = nextSerial();
    const revoked = nextSerial();
    await disableDevice(stack.services, disabled, "lost");
    await revokeDevice(stack.services, revoked, "stolen");
    for (const serial of ["NOT-IN-REGISTRY", disabled, revoked]) {
      assert.deepEqual(await hook(eventFor(serial, await newCertificate(serial))), DENY);
    }
    assert.ok(logs.some((l) => l.reason === "unknown-device" && l.serialNumber === "NOT-IN-REGISTRY"));
    assert.ok(logs.some((l) => l.reason === "device-disabled" && l.serialNumber === disabled));
    assert.ok(logs.some((l) => l.reason === "device-revoked" && l.serialNumber === revoked));
  });

  it("denies a provisioned device, except a retry with its own certificate", async () => {
    const serial = nextSerial();
    const own = await provisionThroughFleet(serial);
    assert.deepEqual(await hook(eventFor(serial, await newCertificate(serial))), DENY);
    assert.deepEqual(await hook(eventFor(serial, own)), ALLOW);
  });

  it("denies while another flow (a vend) holds the device's claim", async () => {
    const serial = nextSerial();
    const device = (await stack.services.registry.getDevice(serial)) as Device;
    const claim = {
      id: "vend-in-progress",
      flow: "vend" as const,
      publicKeyFingerprint: "e".repeat(64),
      expiresAt: Date.now() + 60_000,
    };
    assert.ok(await stack.services.registry.claimDevice(device, claim, Date.now()));
    assert.deepEqual(await hook(eventFor(serial, await newCertificate(serial))), DENY);
    assert.ok(logs.some((l) => l.reason === "provisioning-in-progress" && l.serialNumber === serial));
  });

  it("denies malformed input without throwing, and never logs the certificate", async () => {
    const serial = nextSerial();
    const certificate = await newCertificate(serial);
    const valid = eventFor(serial, certificate);
    const malformed: unknown[] = [
      undefined,
      null,
      "SerialNumber=F-0001",
      [],
      {},
      { ...valid, certificateId: "not-hex" },
      { ...valid, claimCertificateId: undefined },
      { ...valid, parameters: { SerialNumber: 42 } },
      { ...valid, certificatePem: fixture.certificatePem },
      eventFor(serial, certificate, {}),
      eventFor(serial, certificate, { serialNumber: serial }),
      eventFor(serial, certificate, { SerialNumber: "has spaces" }),
      eventFor(serial, certificate, { SerialNumber: "x".repeat(129) }),
      eventFor(serial, certificate, { SerialNumber: serial, ProductKey: "bad key!" }),
    ];
    for (const event of malformed) assert.deepEqual(await hook(event), DENY, JSON.stringify(event));
    const { parameters: _omitted, ...withoutParameters } = valid;
    assert.equal(preProvisioningEventSchema.safeParse(withoutParameters).success, true);
    assert.deepEqual(await hook(withoutParameters), DENY, "no parameters: no SerialNumber");
    assert.ok(logs.some((l) => l.reason === "malformed-event"));
    assert.ok(logs.some((l) => l.reason === "invalid-serial-number"));
    assert.ok(logs.some((l) => l.reason === "invalid-product-key"));
    assert.ok(logs.some((l) => l.reason === "invalid-certificate"));
    assert.ok(!JSON.stringify(logs).includes("BEGIN CERTIFICATE"), "the PEM is never logged");
    // None of them left a claim.
    assert.equal((await stack.services.registry.getDevice(serial))?.claim, undefined);
  });

  it("denies when the registry fails (DynamoDB faults)", async () => {
    const serial = nextSerial();
    const certificate = await newCertificate(serial);
    stack.dynamoFaults!.inject({ operation: "GetItem", times: 10 });
    try {
      assert.deepEqual(await hook(eventFor(serial, certificate)), DENY);
    } finally {
      stack.dynamoFaults!.clear();
    }
    const line = logs.find((l) => l.serialNumber === serial && l.level === "error");
    assert.equal(line?.reason, "registry-error");
    assert.equal(line?.error, "DependencyUnavailableError: UNAVAILABLE");
    stack.dynamoFaults!.inject({ operation: "UpdateItem", times: 10 });
    try {
      assert.deepEqual(await hook(eventFor(serial, certificate)), DENY, "the claim write fails: denied");
    } finally {
      stack.dynamoFaults!.clear();
    }
    // The registry works again: the same request is allowed.
    assert.deepEqual(await hook(eventFor(serial, certificate)), ALLOW);
  });

  describe("the deadline", () => {
    /** The real registry, with reads of devices made slower than the deadline on purpose. */
    const slowRegistry = (delayMs: number): Registry => {
      const real = stack.services.registry;
      const slow = Object.create(real) as Registry;
      slow.getDevice = (serialNumber) =>
        new Promise((resolve) => setTimeout(resolve, delayMs)).then(() => real.getDevice(serialNumber));
      return slow;
    };

    it("denies when the registry answers after the deadline, and releases the late claim", async () => {
      const serial = nextSerial();
      const entries: LogEntry[] = [];
      const slowHook = makePreProvisioningHookHandler({
        ...deps,
        registry: slowRegistry(300),
        config: { ...defaultFleetHookConfig, deadlineMs: 100 },
        logger: recordingLogger(entries),
      });
      assert.deepEqual(await slowHook(eventFor(serial, await newCertificate(serial))), DENY);
      assert.equal(entries[0]?.reason, "deadline-exceeded");
      assert.equal(entries[0]?.level, "error");
      // The decision finishes later and would have allowed: its claim is released.
      for (let i = 0; i < 50; i++) {
        const device = await stack.services.registry.getDevice(serial);
        if (device?.version !== 1 && device?.claim === undefined) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal((await stack.services.registry.getDevice(serial))?.claim, undefined);
    });

    it("allows when the same registry answers in time", async () => {
      const serial = nextSerial();
      const decision = await authorizeFleetProvisioning(
        { ...deps, registry: slowRegistry(10), config: { ...defaultFleetHookConfig, deadlineMs: 2_000 } },
        preProvisioningEventSchema.parse(eventFor(serial, await newCertificate(serial))),
      );
      assert.equal(decision.allowed, true);
    });

    it("uses a deadline well inside AWS IoT's 5 s", () => {
      assert.ok(defaultFleetHookConfig.deadlineMs <= 3_500);
    });
  });
});
