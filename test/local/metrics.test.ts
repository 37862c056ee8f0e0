import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { defaultFleetHookConfig } from "#core/fleet/authorize-fleet-provisioning.ts";
import { silentLogger } from "#core/logger.ts";
import { METRIC, METRIC_SERVICES } from "#core/metrics.ts";
import { createCsr, createKeyPair } from "#core/pki/issue.ts";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import { makePreProvisioningHookHandler } from "#handlers/pre-provisioning-hook.ts";
import { LOCAL_METRICS_PATH, LocalMetrics, type MetricsSnapshot } from "#local/local-metrics.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";
import { runOnramp } from "#test/support/run-cli.ts";
import { secretLoginClient } from "#test/support/secret-login-mqtt.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

describe("the local stack's counters (GET /_onramp/metrics, onramp status)", () => {
  let stack: Stack;
  let product: Awaited<ReturnType<typeof seedProduct>>;
  const serials = ["M-1", "M-2", "M-3"];

  before(async () => {
    stack = await startTestStack();
    product = await seedProduct(stack.services, { productKey: "metered", name: "Metered" }, serials);
  });
  after(() => stack.stop());

  const snapshot = async (): Promise<MetricsSnapshot> => {
    const response = await fetch(new URL(LOCAL_METRICS_PATH, stack.endpoints.api));
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /application\/json/);
    return (await response.json()) as MetricsSnapshot;
  };
  const counter = (
    s: MetricsSnapshot,
    service: string,
    name: string,
    dimensions: Record<string, string> = {},
  ) =>
    s.counters.find(
      (c) =>
        c.service === service &&
        c.name === name &&
        JSON.stringify(c.dimensions) === JSON.stringify(dimensions),
    )?.value ?? 0;

  const vend = async (serial: string, privateKeyPem: string, secret = product.secretFor(serial)) =>
    requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: "metered",
      secret,
      keyMode: "csr",
      csr: await createCsr({ privateKeyPem, subject: { commonName: serial } }),
    });

  it("counts vends by outcome code and their latency, after real requests", async () => {
    const { privateKeyPem } = await createKeyPair("EC-P256");
    assert.equal((await vend("M-1", privateKeyPem)).status, 201);
    assert.equal((await vend("M-1", privateKeyPem)).status, 200);
    const wrong = await vend("M-2", privateKeyPem, "d3Jvbmc=");
    assert.equal(wrong.status, 401);
    const code = (wrong.body as { error: { code: string } }).error.code;
    const malformed = await fetch(new URL("/v1/certificates", stack.endpoints.api), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    assert.equal(malformed.status, 400);

    const s = await snapshot();
    assert.equal(counter(s, METRIC_SERVICES.vend, METRIC.vends, { outcome: "CREATED" }), 1);
    assert.equal(counter(s, METRIC_SERVICES.vend, METRIC.vends, { outcome: "REPLAYED" }), 1);
    assert.equal(counter(s, METRIC_SERVICES.vend, METRIC.vends, { outcome: code }), 1);
    assert.equal(counter(s, METRIC_SERVICES.vend, METRIC.vends, { outcome: "INVALID_REQUEST" }), 1);
    const latency = s.durations.find((d) => d.service === METRIC_SERVICES.vend && d.name === METRIC.latency);
    assert.equal(latency?.count, 4);
    assert.ok((latency?.maxMs ?? 0) > 0);
  });

  it("counts undo steps when AWS IoT fails midway, and no undo failure when the undo succeeds", async () => {
    const { privateKeyPem } = await createKeyPair("EC-P256");
    stack.iot.faults.inject({
      operation: "AttachThingPrincipal",
      error: "InternalFailureException",
      times: 10,
    });
    const res = await vend("M-3", privateKeyPem);
    stack.iot.faults.clear();
    assert.equal(res.status, 503);
    const s = await snapshot();
    const code = (res.body as { error: { code: string } }).error.code;
    assert.equal(counter(s, METRIC_SERVICES.vend, METRIC.vends, { outcome: code }), 1);
    assert.equal(
      counter(s, METRIC_SERVICES.vend, METRIC.undoSteps, { flow: "vend", step: "destroy-certificate" }),
      1,
    );
    assert.equal(
      counter(s, METRIC_SERVICES.vend, METRIC.undoSteps, { flow: "vend", step: "release-claim" }),
      1,
    );
    assert.equal(counter(s, METRIC_SERVICES.vend, METRIC.undoFailures), 0);
  });

  it("counts undo failures when the undo fails too", async () => {
    const { privateKeyPem } = await createKeyPair("EC-P256");
    await stack.services.registry.importDevices([{ serialNumber: "M-4", productKey: "metered" }]);
    stack.iot.faults.inject({
      operation: "AttachThingPrincipal",
      error: "InternalFailureException",
      times: 10,
    });
    stack.iot.faults.inject({ operation: "UpdateCertificate", error: "InternalFailureException", times: 10 });
    const res = await vend("M-4", privateKeyPem);
    stack.iot.faults.clear();
    assert.equal(res.status, 503);
    assert.equal(counter(await snapshot(), METRIC_SERVICES.vend, METRIC.undoFailures), 1);
  });

  it("counts registrations (HTTPS) by outcome", async () => {
    const response = await fetch(new URL("/auth/register/device", stack.endpoints.api), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "productKey=metered",
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ["code", "errorCode", "message"], "Alibaba's shape, unchanged");
    assert.equal(
      counter(await snapshot(), METRIC_SERVICES.registerDevice, METRIC.registrations, {
        outcome: "INVALID_REQUEST",
      }),
      1,
    );
  });

  it("counts JITR refusals by reason, from events the rule engine delivers", async () => {
    const event = (certificateId: string) => ({
      certificateId,
      caCertificateId: "c".repeat(64),
      timestamp: Date.now(),
      certificateStatus: "PENDING_ACTIVATION",
      awsAccountId: "000000000000",
    });
    await stack.mqtt.rules.dispatch(
      `$aws/events/certificates/registered/${"c".repeat(64)}`,
      JSON.stringify(event("a".repeat(64))),
    );
    await stack.mqtt.rules.dispatch(
      `$aws/events/certificates/registered/${"c".repeat(64)}`,
      JSON.stringify({ certificateId: "x" }),
    );
    await stack.mqtt.rules.settled();
    const s = await snapshot();
    const refusals = s.counters.filter(
      (c) => c.service === METRIC_SERVICES.jitr && c.name === METRIC.jitrRefusals,
    );
    assert.equal(counter(s, METRIC_SERVICES.jitr, METRIC.jitrRefusals, { reason: "malformed-event" }), 1);
    assert.equal(
      refusals.reduce((n, c) => n + c.value, 0),
      2,
      JSON.stringify(refusals),
    );
    assert.equal(counter(s, METRIC_SERVICES.jitr, METRIC.jitrActivations), 0);
    assert.ok(s.durations.some((d) => d.service === METRIC_SERVICES.jitr && d.count === 2));
  });

  it("counts the custom authorizer's denials by reason, from a real MQTT CONNECT", async () => {
    // A well-formed Alibaba login of a device the registry does not know.
    const login = buildAliyunMqttCredentials({
      productKey: "a1Nobody",
      deviceName: "nobody-01",
      deviceSecret: "c2VjcmV0",
      timestamp: Date.now(),
    });
    const client = secretLoginClient(stack, login);
    client.on("error", () => undefined);
    await new Promise<void>((resolve) => client.once("close", () => resolve()));
    client.end(true);
    const s = await snapshot();
    const denials = s.counters.filter(
      (c) => c.service === METRIC_SERVICES.authorizer && c.name === METRIC.authorizerDecisions,
    );
    assert.equal(denials.length, 1, JSON.stringify(s.counters));
    assert.equal(denials[0]?.dimensions.decision, "deny");
    assert.ok(denials[0]?.dimensions.reason);
  });

  it("onramp status shows the counters (and --json has them)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "onramp-metrics-"));
    try {
      const file = join(dir, "endpoints.json");
      writeFileSync(file, JSON.stringify(stack.endpoints), { mode: 0o600 });
      const text = await runOnramp("status", "--endpoints", file);
      assert.equal(text.exitCode, 0, String(text.error));
      assert.match(text.stdout, /counters since /);
      assert.match(text.stdout, /Vends\s+.*\bCREATED 1\b/);
      const json = await runOnramp("status", "--endpoints", file, "--json");
      const status = JSON.parse(json.stdout) as { metrics: MetricsSnapshot };
      assert.equal(counter(status.metrics, METRIC_SERVICES.vend, METRIC.vends, { outcome: "CREATED" }), 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the fleet hook's decisions (the real handler, local counters)", () => {
  it("counts allow / deny by reason", async () => {
    const metrics = new LocalMetrics();
    const handler = makePreProvisioningHookHandler({
      registry: {} as never,
      nonces: {} as never,
      secrets: {} as never,
      iot: {} as never,
      config: defaultFleetHookConfig,
      logger: silentLogger,
      metrics: metrics.forService(METRIC_SERVICES.fleetHook),
    } as Parameters<typeof makePreProvisioningHookHandler>[0]);
    assert.deepEqual(await handler({ not: "an event" }), { allowProvisioning: false });
    assert.equal(
      metrics.value(METRIC_SERVICES.fleetHook, METRIC.fleetHookDecisions, {
        decision: "deny",
        reason: "malformed-event",
      }),
      1,
    );
    assert.equal(metrics.snapshot().durations[0]?.count, 1);
  });
});
