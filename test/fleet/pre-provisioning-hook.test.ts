import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  authorizeFleetProvisioning,
  defaultFleetHookConfig,
  type FleetHookDeps,
} from "#core/fleet/authorize-fleet-provisioning.ts";
import { preProvisioningEventSchema } from "#core/fleet/pre-provisioning-event.ts";
import type { Logger } from "#core/logger.ts";
import { disableDevice, revokeDevice } from "#core/registry/manage-devices.ts";
import type { Device } from "#core/registry/model.ts";
import { makePreProvisioningHookHandler } from "#handlers/pre-provisioning-hook.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type LogEntry = { level: string; message: string } & Record<string, unknown>;

/** The hook input as AWS IoT sends it (payload version 2020-04-01), from the AWS documentation's shape. */
const fixture = JSON.parse(
  readFileSync(new URL("./fixtures/pre-provisioning-event.json", import.meta.url), "utf8"),
) as { certificatePem: string; parameters: Record<string, string> } & Record<string, unknown>;

const DENY = { allowProvisioning: false };

function recordingLogger(entries: LogEntry[]): Logger {
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      entries.push({ level, message, ...Object.assign({}, ...extra) });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const certificateId = () => randomBytes(32).toString("hex");

/** A hook input for a serial, with a fresh device certificate id unless given. */
function eventFor(
  serial: string,
  options: { parameters?: Record<string, string>; certificateId?: string } = {},
) {
  return {
    ...fixture,
    certificateId: options.certificateId ?? certificateId(),
    clientId: serial,
    parameters: options.parameters ?? { SerialNumber: serial },
  };
}

/**
 * The pre-provisioning hook (handler + use case) against the local stack's registry (dynalite
 * behind the DynamoDB fault proxy): the real DynamoDbRegistry, devices seeded by the same code the
 * CLI uses. Only the deadline test uses a stub registry (a dependency that never answers cannot be
 * made from a real one without stalling the whole stack).
 */
describe("fleet pre-provisioning hook against the local stack", () => {
  let stack: Stack;
  let handler: ReturnType<typeof makePreProvisioningHookHandler>;
  const logs: LogEntry[] = [];
  const serials = Array.from({ length: 12 }, (_, i) => `F-${String(i).padStart(4, "0")}`);
  let next = 0;
  const nextSerial = () => serials[next++] ?? assert.fail("out of serials");

  before(async () => {
    stack = await startTestStack({ dynamoFaultInjection: true });
    await seedProduct(stack.services, { productKey: "pk-fleet", name: "Fleet lamp" }, serials);
    await seedProduct(stack.services, { productKey: "pk-other", name: "Other" }, []);
    handler = makePreProvisioningHookHandler({
      registry: stack.services.registry,
      config: defaultFleetHookConfig,
      logger: recordingLogger(logs),
    });
  });
  after(async () => {
    await stack?.stop();
  });

  /** Marks a device provisioned with a certificate, as a finished vend or JITR flow leaves it. */
  async function provision(serial: string, withCertificate: string): Promise<void> {
    const device = (await stack.services.registry.getDevice(serial)) as Device;
    const claim = {
      id: `claim-${serial}`,
      publicKeyFingerprint: "f".repeat(64),
      expiresAt: Date.now() + 60_000,
    };
    assert.ok(await stack.services.registry.claimDevice(device, claim, Date.now()));
    assert.ok(
      await stack.services.registry.completeClaim(serial, claim.id, {
        certificateId: withCertificate,
        thingName: serial,
        publicKeyFingerprint: claim.publicKeyFingerprint,
        at: new Date().toISOString(),
      }),
    );
  }

  it("allows a registered serial and overrides ProductKey with the registry's", async () => {
    const serial = nextSerial();
    assert.deepEqual(await handler(eventFor(serial)), {
      allowProvisioning: true,
      parameterOverrides: { ProductKey: "pk-fleet" },
    });
    const line = logs.find(
      (l) => l.message === "fleet hook: provisioning allowed" && l.serialNumber === serial,
    );
    assert.equal(line?.productKey, "pk-fleet");
  });

  it("allows a matching ProductKey parameter, denies another product's key", async () => {
    const serial = nextSerial();
    const allowed = await handler(
      eventFor(serial, { parameters: { SerialNumber: serial, ProductKey: "pk-fleet" } }),
    );
    assert.equal(allowed.allowProvisioning, true);
    assert.deepEqual(
      await handler(eventFor(serial, { parameters: { SerialNumber: serial, ProductKey: "pk-other" } })),
      DENY,
    );
    assert.deepEqual(
      await handler(eventFor(serial, { parameters: { SerialNumber: serial, ProductKey: "pk-missing" } })),
      DENY,
    );
  });

  it("does not write the registry: the device stays registered after an allow", async () => {
    const serial = nextSerial();
    assert.equal((await handler(eventFor(serial))).allowProvisioning, true);
    const device = await stack.services.registry.getDevice(serial);
    assert.equal(device?.status, "registered");
    assert.equal(device?.certificateId, undefined);
    assert.equal(device?.claim, undefined);
  });

  it("denies an unknown serial", async () => {
    assert.deepEqual(await handler(eventFor("NOT-IN-REGISTRY")), DENY);
    assert.ok(logs.some((l) => l.reason === "unknown-device" && l.serialNumber === "NOT-IN-REGISTRY"));
  });

  it("denies a disabled and a revoked device", async () => {
    const disabled = nextSerial();
    const revoked = nextSerial();
    await disableDevice(stack.services, disabled, "lost");
    await revokeDevice(stack.services, revoked, "stolen");
    assert.deepEqual(await handler(eventFor(disabled)), DENY);
    assert.deepEqual(await handler(eventFor(revoked)), DENY);
    assert.ok(logs.some((l) => l.reason === "device-disabled" && l.serialNumber === disabled));
    assert.ok(logs.some((l) => l.reason === "device-revoked" && l.serialNumber === revoked));
  });

  it("denies a provisioned device, except a retry with its own certificate", async () => {
    const serial = nextSerial();
    const own = certificateId();
    await provision(serial, own);
    assert.deepEqual(await handler(eventFor(serial)), DENY);
    assert.ok(
      logs.some((l) => l.reason === "provisioned-with-another-certificate" && l.serialNumber === serial),
    );
    assert.deepEqual(await handler(eventFor(serial, { certificateId: own })), {
      allowProvisioning: true,
      parameterOverrides: { ProductKey: "pk-fleet" },
    });
  });

  it("denies while another flow holds the device's claim", async () => {
    const serial = nextSerial();
    const device = (await stack.services.registry.getDevice(serial)) as Device;
    const claim = {
      id: "vend-in-progress",
      publicKeyFingerprint: "e".repeat(64),
      expiresAt: Date.now() + 60_000,
    };
    assert.ok(await stack.services.registry.claimDevice(device, claim, Date.now()));
    assert.deepEqual(await handler(eventFor(serial)), DENY);
    assert.ok(logs.some((l) => l.reason === "provisioning-in-progress" && l.serialNumber === serial));
  });

  it("denies malformed input without throwing, and never logs the certificate", async () => {
    const serial = nextSerial();
    const malformed: unknown[] = [
      undefined,
      null,
      "SerialNumber=F-0001",
      [],
      {},
      { ...eventFor(serial), certificateId: "not-hex" },
      { ...eventFor(serial), claimCertificateId: undefined },
      { ...eventFor(serial), parameters: { SerialNumber: 42 } },
      eventFor(serial, { parameters: {} }),
      eventFor(serial, { parameters: { serialNumber: serial } }),
      eventFor(serial, { parameters: { SerialNumber: "has spaces" } }),
      eventFor(serial, { parameters: { SerialNumber: "x".repeat(129) } }),
      eventFor(serial, { parameters: { SerialNumber: serial, ProductKey: "bad key!" } }),
    ];
    for (const event of malformed) assert.deepEqual(await handler(event), DENY, JSON.stringify(event));
    const { parameters: _omitted, ...withoutParameters } = eventFor(serial);
    assert.equal(preProvisioningEventSchema.safeParse(withoutParameters).success, true);
    assert.deepEqual(await handler(withoutParameters), DENY, "no parameters: no SerialNumber");
    assert.ok(logs.some((l) => l.reason === "malformed-event"));
    assert.ok(logs.some((l) => l.reason === "invalid-serial-number"));
    assert.ok(logs.some((l) => l.reason === "invalid-product-key"));
    assert.ok(!JSON.stringify(logs).includes("BEGIN CERTIFICATE"), "the PEM is never logged");
  });

  it("denies when the registry fails (DynamoDB GetItem faults)", async () => {
    const serial = nextSerial();
    stack.dynamoFaults!.inject({ operation: "GetItem", times: 10 });
    try {
      assert.deepEqual(await handler(eventFor(serial)), DENY);
    } finally {
      stack.dynamoFaults!.clear();
    }
    const line = logs.find((l) => l.serialNumber === serial && l.level === "error");
    assert.ok(line, "logged as an error");
    assert.equal(line.reason, "registry-error");
    assert.equal(line.error, "DependencyUnavailableError");
    // The registry works again: the same request is allowed.
    assert.equal((await handler(eventFor(serial))).allowProvisioning, true);
  });
});

describe("fleet pre-provisioning hook: the deadline", () => {
  // A stub registry: the only way to make a dependency slower than the deadline on purpose.
  const slowRegistry = (delayMs: number): FleetHookDeps["registry"] => ({
    getDevice: (serialNumber) =>
      new Promise((resolve) =>
        setTimeout(
          () =>
            resolve({
              serialNumber,
              productKey: "pk-fleet",
              status: "registered",
              version: 1,
              createdAt: "2025-01-01T00:00:00.000Z",
              updatedAt: "2025-01-01T00:00:00.000Z",
            }),
          delayMs,
        ),
      ),
    getProduct: async (productKey) => ({
      productKey,
      name: "Fleet lamp",
      authMode: "device-secret",
      allowServerKeys: false,
      templateName: "fleet-claim-device",
      policyName: "onramp-device-policy",
      reprovision: "never",
      trustedCaIds: [],
      createdAt: "2025-01-01T00:00:00.000Z",
    }),
  });

  it("denies when the registry answers after the deadline, and answers at the deadline", async () => {
    const logs: LogEntry[] = [];
    const handler = makePreProvisioningHookHandler({
      registry: slowRegistry(1_000),
      config: { deadlineMs: 100 },
      logger: recordingLogger(logs),
    });
    const started = performance.now();
    assert.deepEqual(await handler(eventFor("F-SLOW")), DENY);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 95 && elapsed < 600, `answered after ${elapsed.toFixed(0)} ms`);
    assert.equal(logs[0]?.reason, "deadline-exceeded");
    assert.equal(logs[0]?.level, "error");
  });

  it("allows when the same registry answers in time (the stub is otherwise a valid device)", async () => {
    const decision = await authorizeFleetProvisioning(
      { registry: slowRegistry(10), config: { deadlineMs: 1_000 }, logger: recordingLogger([]) },
      preProvisioningEventSchema.parse(eventFor("F-FAST")),
    );
    assert.equal(decision.allowed, true);
  });

  it("uses a deadline well inside AWS IoT's 5 s", () => {
    assert.ok(defaultFleetHookConfig.deadlineMs <= 3_500);
  });
});
