import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ListCertificatesCommand } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { AwsCaRegistry } from "#adapters/iot-ca-registry.ts";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { cliIotClient, cliServices, resolveTarget } from "#cli/wiring.ts";
import { registerCaCertificate } from "#core/jitr/register-ca-certificate.ts";
import { CertificateIssuer, createCsr, createKeyPair, createSelfSignedCa } from "#core/pki/issue.ts";
import { createProduct } from "#core/registry/manage-products.ts";
import { deriveDeviceSecret } from "#credentials/derived-secret.ts";
import { connectDevice } from "#test/local/mqtt/mqtt-device.ts";
import { runOnramp } from "#test/support/run-cli.ts";

/**
 * Crash recovery with real kills: the whole local stack runs in a child process (`npm start`'s
 * entry, with a data folder), 50 devices vend and 30 devices connect for just-in-time registration
 * at once, and the stack gets SIGKILL at a random point of that; then it is restarted, the
 * operator runs `onramp registry reconcile --all`, and every device retries as firmware does.
 * Three rounds. Asserted: no device is stuck (every one ends provisioned with an ACTIVE
 * certificate) and no certificate is orphaned (every certificate in AWS IoT is a device's).
 * Claims last 1 s here (`--claim-ttl`) so a crashed flow's claim expires within the test.
 */
const ROUNDS = 3;
const VENDING = 50;
const JITR = 30;
const CLAIM_TTL_SECONDS = 1;

type Ports = { api: number; aws: number; dynamodb: number; mqtt: number };
type VendDevice = { serial: string; csr: string };
type JitrDevice = { serial: string; keyPem: string; certPem: string };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts the stack, retrying while the previous one's leftovers still hold a port or the data
 * folder: after SIGKILL its dynalite child notices the parent is gone and exits on its own, which
 * can take a moment on a loaded machine.
 */
async function startStack(dataDir: string, ports: Ports): Promise<ChildProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStackOnce(dataDir, ports);
    } catch (error) {
      if (attempt >= 20) throw error;
      await sleep(500);
    }
  }
}

function startStackOnce(dataDir: string, ports: Ports): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "local/main.ts",
      "--data-dir",
      dataDir,
      "--no-demo",
      "--claim-ttl",
      String(CLAIM_TTL_SECONDS),
      ...Object.entries(ports).flatMap(([name, port]) => [`--${name}-port`, String(port)]),
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    },
  );
  let err = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-2000);
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the stack did not start: ${out}`)), 60_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("Press Ctrl+C to stop.")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the stack exited with ${code}: ${out}\n${err}`));
    });
  });
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/** "expired-claim 3, orphan-certificate 1" */
function summary(kinds: string[]): string {
  const counts = new Map<string, number>();
  for (const kind of kinds) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return [...counts].map(([kind, n]) => `${kind} ${n}`).join(", ") || "nothing to repair";
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("crash recovery: kill -9 during concurrent vends and JITR first connects", () => {
  let dir: string;
  let dataDir: string;
  let endpoints: string;
  let ports: Ports;
  let child: ChildProcess | undefined;
  let productSecret: string;
  let issuer: CertificateIssuer;
  let rootCaPem: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "onramp-crash-"));
    dataDir = join(dir, "data");
    endpoints = join(dataDir, "endpoints.json");
    ports = {
      api: await freePort(),
      aws: await freePort(),
      dynamodb: await freePort(),
      mqtt: await freePort(),
    };
    child = await startStack(dataDir, ports);
    const target = await resolveTarget({ endpoints });
    const services = cliServices(target);
    const iotClient = cliIotClient(target);
    try {
      const ca = await createSelfSignedCa({ subject: { commonName: "crash drill CA" } });
      const registered = await registerCaCertificate(
        { iot: new AwsCaRegistry(iotClient) },
        { caCertPem: ca.certPem, caPrivateKeyPem: ca.privateKeyPem },
      );
      issuer = await CertificateIssuer.create(ca);
      ({ secret: productSecret } = await createProduct(services, {
        productKey: "crash-vend",
        name: "Crash vend",
      }));
      await createProduct(services, {
        productKey: "crash-jitr",
        name: "Crash JITR",
        trustedCaIds: [registered.caCertificateId],
      });
    } finally {
      services.close();
      iotClient.destroy();
    }
    rootCaPem = readFileSync(join(dataDir, "iot", "root-ca.pem"), "utf8");
  });
  after(async () => {
    if (child) await kill9(child);
    rmSync(dir, { recursive: true, force: true });
  });

  const vend = (device: VendDevice) =>
    requestCertificate({
      apiUrl: `http://127.0.0.1:${ports.api}`,
      serialNumber: device.serial,
      productKey: "crash-vend",
      secret: deriveDeviceSecret(productSecret, device.serial),
      keyMode: "csr",
      csr: device.csr,
    });

  /** One connection attempt; true when the endpoint accepted it (the certificate is ACTIVE). */
  const connectOnce = async (device: JitrDevice): Promise<boolean> => {
    const result = await connectDevice({
      url: `mqtts://localhost:${ports.mqtt}`,
      caPem: rootCaPem,
      clientId: device.serial,
      credentials: { keyPem: device.keyPem, certPem: device.certPem },
      timeoutMs: 3000,
    });
    if (result.connected) (result.client as MqttClient).end(true);
    return result.connected;
  };

  it(`${ROUNDS} rounds: 0 devices stuck, 0 orphaned certificates`, async (t) => {
    const vendDevices: VendDevice[] = [];
    const jitrDevices: JitrDevice[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const target = await resolveTarget({ endpoints });
      const services = cliServices(target);
      const roundVend: VendDevice[] = [];
      const roundJitr: JitrDevice[] = [];
      try {
        for (let i = 0; i < VENDING; i++) {
          const serial = `CV-${round}-${String(i).padStart(3, "0")}`;
          const keys = await createKeyPair("EC-P256");
          roundVend.push({
            serial,
            csr: await createCsr({ privateKeyPem: keys.privateKeyPem, subject: { commonName: serial } }),
          });
        }
        for (let i = 0; i < JITR; i++) {
          const serial = `CJ-${round}-${String(i).padStart(3, "0")}`;
          const keys = await createKeyPair("EC-P256");
          const issued = await issuer.issue({
            subjectPublicKey: keys.publicKeyPem,
            subject: { commonName: serial },
          });
          roundJitr.push({ serial, keyPem: keys.privateKeyPem, certPem: issued.certificatePem });
        }
        await services.registry.importDevices(
          roundVend.map((d) => ({ serialNumber: d.serial, productKey: "crash-vend" })),
        );
        await services.registry.importDevices(
          roundJitr.map((d) => ({ serialNumber: d.serial, productKey: "crash-jitr" })),
        );
      } finally {
        services.close();
      }
      vendDevices.push(...roundVend);
      jitrDevices.push(...roundJitr);

      // Everything at once, then SIGKILL at a random point of it.
      let answered = 0;
      const inFlight = [
        ...roundVend.map((d) =>
          vend(d).then(
            (res) => {
              answered += res.status === 201 ? 1 : 0;
            },
            () => undefined,
          ),
        ),
        ...roundJitr.map((d) => connectOnce(d).catch(() => false)),
      ];
      const killAfterMs = 200 + Math.floor(Math.random() * 2500);
      await sleep(killAfterMs);
      await kill9(child!);
      const vendedBeforeKill = answered;
      await Promise.allSettled(inFlight);
      child = await startStack(dataDir, ports);
      await sleep(CLAIM_TTL_SECONDS * 1000 + 200);

      // The operator's repair after a crash, as README's troubleshooting says.
      const repaired = await runOnramp("registry", "reconcile", "--all", "--json", "--endpoints", endpoints);
      assert.equal(
        repaired.error,
        undefined,
        `round ${round} (kill after ${killAfterMs} ms): ${String(repaired.error)}`,
      );
      const kinds = (JSON.parse(repaired.stdout) as { findings: { kind: string }[] }).findings.map(
        (f) => f.kind,
      );
      t.diagnostic(
        `round ${round}: killed after ${killAfterMs} ms with ${vendedBeforeKill}/${VENDING} vends answered; reconcile: ${summary(kinds)}`,
      );
    }

    // Every device retries as firmware does (with Retry-After), JITR devices by reconnecting.
    const stuck: string[] = [];
    await Promise.all(
      vendDevices.map(async (device) => {
        for (let attempt = 0; attempt < 20; attempt++) {
          const res = await vend(device).catch(() => undefined);
          if (res && (res.status === 200 || res.status === 201)) return;
          if (res && res.status < 500 && res.status !== 409 && res.status !== 429) break;
          const wait = Number(res?.headers.get("retry-after") ?? 1);
          await sleep(Math.min(wait, 1) * 1000 * (0.5 + Math.random()));
        }
        stuck.push(device.serial);
      }),
    );
    for (const device of jitrDevices) {
      let connected = false;
      for (let attempt = 0; attempt < 15 && !connected; attempt++) {
        connected = await connectOnce(device);
        if (!connected) await sleep(150);
      }
      if (!connected) stuck.push(device.serial);
    }
    assert.deepEqual(stuck, [], "devices stuck after the crashes");

    // A last pass of the repair tool picks up certificates made in the instant before a crash.
    const final = await runOnramp("registry", "reconcile", "--all", "--json", "--endpoints", endpoints);
    assert.equal(final.error, undefined, String(final.error));
    const last = (JSON.parse(final.stdout) as { findings: { kind: string }[] }).findings.map((f) => f.kind);
    t.diagnostic(`after the retries, reconcile: ${summary(last)}`);

    const target = await resolveTarget({ endpoints });
    const services = cliServices(target);
    const iotClient = cliIotClient(target);
    try {
      const recorded = new Set<string>();
      for (const { serial } of [...vendDevices, ...jitrDevices]) {
        const device = await services.registry.getDevice(serial);
        assert.equal(device?.status, "provisioned", serial);
        recorded.add(device!.certificateId!);
        const certificate = await services.iot.inspectCertificate(device!.certificateId!);
        assert.equal(certificate?.status, "ACTIVE", serial);
        assert.ok(certificate?.things.includes(serial), `${serial}: certificate on its thing`);
        assert.ok((certificate?.policies.length ?? 0) > 0, `${serial}: a policy attached`);
      }
      const all: string[] = [];
      let marker: string | undefined;
      do {
        const page = await iotClient.send(new ListCertificatesCommand({ pageSize: 250, marker }));
        all.push(...(page.certificates ?? []).map((c) => c.certificateId!));
        marker = page.nextMarker;
      } while (marker);
      const orphans = all.filter((id) => !recorded.has(id));
      assert.deepEqual(orphans, [], "certificates no device owns");
    } finally {
      services.close();
      iotClient.destroy();
    }
  });
});
