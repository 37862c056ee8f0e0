/**
 * npm run bench:authorizer — the custom authorizer for devices born with a secret (issue 9):
 *
 * 1. Decisions per second and p50/p99 in-process: the real handler (makeCustomAuthorizerHandler,
 *    AWS's event shape, password base64) against the local stack's registry and secret store (its
 *    dynalite and Secrets Manager emulator, through the same adapters as Lambda), for an allowed
 *    warm login (Alibaba sign with timestamp; one registry read, the product cached), an EnOS
 *    SecureMode 2 login, a wrong password and an unknown device, at concurrency 1 and 16.
 * 2. Connects per second through the local MQTT endpoint with real `mqtt` TLS clients: a secret
 *    login (TLS without a client certificate, CONNECT → the authorizer → CONNACK) next to a
 *    certificate login of a vended device (mutual TLS, the reference measured in the same run), so
 *    the figure that matters is the ratio. Each connect is a new TLS connection; a connection ends
 *    right after its CONNACK.
 *
 * The stack runs in a child process (as `npm start` runs it, and as in bench/jitr.ts) so the
 * clients' TLS work does not share its event loop. Everything listens on 127.0.0.1. Setup (demo
 * products, a vended certificate, first logins) happens before the clock starts.
 *
 * Usage: npm run bench:authorizer -- [--decisions 2000] [--connects 300] [--concurrency 1,16]
 * (--concurrency: the in-process decisions; connects are measured one at a time)
 */
import { fork } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import mqtt, { type IClientOptions } from "mqtt";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { cliServices, resolveTarget } from "#cli/wiring.ts";
import { silentLogger } from "#core/logger.ts";
import { createCsr, createKeyPair } from "#core/pki/issue.ts";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import { buildEnosMqttCredentials } from "#credentials/enos-mqtt.ts";
import type { MqttCredentials } from "#credentials/mqtt-credentials.ts";
import { makeCustomAuthorizerHandler } from "#handlers/custom-authorizer.ts";
import { consoleLogger } from "#local/console-logger.ts";
import { seedDemo } from "#local/seed-demo.ts";
import { startLocalStack } from "#local/stack.ts";
import { AUTHORIZER_POLICY_DOCUMENTS, loadPolicyDocument } from "#templates/catalog.ts";
import { machine, percentile, runLoad } from "./stats.ts";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { values } = parseArgs({
  options: {
    decisions: { type: "string", default: "2000" },
    connects: { type: "string", default: "300" },
    concurrency: { type: "string", default: "1,16" },
    serve: { type: "string" },
  },
});

if (values.serve) await serve(values.serve);
else await measure();

/** Child: the local stack in memory, with the demo products (as `npm start` seeds them). */
async function serve(dir: string): Promise<void> {
  const stack = await startLocalStack({
    logger: process.env.BENCH_DEBUG ? consoleLogger() : silentLogger,
    ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0 },
  });
  const demo = await seedDemo(stack.services);
  writeFileSync(join(dir, "endpoints.json"), JSON.stringify(stack.endpoints));
  writeFileSync(join(dir, "root-ca.pem"), stack.rootCaPem);
  writeFileSync(join(dir, "demo.json"), JSON.stringify(demo));
  process.send?.({ ready: true });
  process.on("disconnect", () => void stack.close().then(() => process.exit(0)));
}

type Row = { what: string; concurrency: number; count: number; perSecond: number; p50: number; p99: number };

async function measure(): Promise<void> {
  const decisions = Number(values.decisions);
  const connects = Number(values.connects);
  const levels = values.concurrency.split(",").map(Number);
  const dir = mkdtempSync(join(tmpdir(), "onramp-bench-authorizer-"));
  const child = fork(new URL(import.meta.url).pathname, ["--serve", dir], { execArgv: ["--import", "tsx"] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once("message", () => resolve());
      child.once("exit", (code) => reject(new Error(`local stack exited (${code})`)));
    });
    const endpoints = JSON.parse(readFileSync(join(dir, "endpoints.json"), "utf8")) as {
      mqtt: string;
      api: string;
    };
    const rootCaPem = readFileSync(join(dir, "root-ca.pem"), "utf8");
    const demo = JSON.parse(readFileSync(join(dir, "demo.json"), "utf8")) as Awaited<
      ReturnType<typeof seedDemo>
    >;
    const target = await resolveTarget({ endpoints: join(dir, "endpoints.json") });
    const services = cliServices(target);
    const handler = makeCustomAuthorizerHandler({
      ...services,
      policies: {
        device: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.device),
        activation: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.activation),
      },
      logger: silentLogger,
    });
    const lamp = "lamp-0001";
    const lampSecret = demo.secretProducts.aliyun.deviceSecrets[lamp] ?? "";
    const meter = "meter-0001";
    const meterSecret = demo.secretProducts.enos.deviceSecrets[meter] ?? "";
    const event = (login: MqttCredentials) => ({
      protocols: ["tls", "mqtt"],
      protocolData: {
        mqtt: {
          clientId: login.clientId,
          username: login.username,
          password: Buffer.from(login.password).toString("base64"),
        },
      },
    });
    const aliyunLogin = () =>
      buildAliyunMqttCredentials({
        productKey: "demo-aliyun",
        deviceName: lamp,
        deviceSecret: lampSecret,
        timestamp: Date.now(),
      });
    const enosLogin = () =>
      buildEnosMqttCredentials({
        productKey: "demo-enos",
        deviceKey: meter,
        secret: meterSecret,
        timestamp: Date.now(),
      });
    // First logins (thing creation, registry commit) before the clock: warm logins are measured.
    for (const login of [aliyunLogin(), enosLogin()]) {
      const answer = await handler(event(login));
      if (!answer.isAuthenticated) throw new Error(`setup: ${login.username} was denied`);
    }

    const cases: Array<{ what: string; expect: boolean; login: () => MqttCredentials }> = [
      { what: "allow: Alibaba sign (hmacsha256, timestamp)", expect: true, login: aliyunLogin },
      { what: "allow: EnOS SecureMode 2 (sha256)", expect: true, login: enosLogin },
      {
        what: "deny: wrong password",
        expect: false,
        login: () => ({ ...aliyunLogin(), password: "0".repeat(64) }),
      },
      {
        what: "deny: unknown device",
        expect: false,
        login: () =>
          buildAliyunMqttCredentials({
            productKey: "demo-aliyun",
            deviceName: "lamp-9999",
            deviceSecret: lampSecret,
            timestamp: Date.now(),
          }),
      },
    ];
    // Warm-up (JIT, connection pools, the product cache), untimed.
    for (const c of cases) for (let i = 0; i < 200; i++) await handler(event(c.login()));
    const rows: Row[] = [];
    for (const c of cases) {
      const events = Array.from({ length: Math.min(decisions, 500) }, () => event(c.login()));
      for (const concurrency of levels) {
        let wrong = 0;
        const { latencies, seconds } = await runLoad(decisions, concurrency, async (i) => {
          const answer = await handler(events[i % events.length]);
          if (answer.isAuthenticated !== c.expect) wrong++;
        });
        if (wrong > 0) throw new Error(`${c.what}: ${wrong} unexpected decisions`);
        rows.push(row(c.what, concurrency, latencies, seconds));
      }
    }

    // Connects through the local MQTT endpoint: a vended certificate device is the reference.
    const keys = await createKeyPair("EC-P256");
    const serial = demo.serials[1] ?? "DEMO-0002";
    const vend = await requestCertificate({
      apiUrl: endpoints.api,
      serialNumber: serial,
      productKey: demo.productKey,
      secret: demo.deviceSecrets[serial] ?? "",
      keyMode: "csr",
      csr: await createCsr({ privateKeyPem: keys.privateKeyPem, subject: { commonName: serial } }),
    });
    if (vend.status !== 201 && vend.status !== 200) throw new Error(`setup: vend answered ${vend.status}`);
    const certPem = String(vend.body.certificatePem);
    const thingName = String(vend.body.thingName);
    const url = `mqtts://localhost:${new URL(endpoints.mqtt).port}`;
    const connectOnce = (options: IClientOptions) =>
      new Promise<void>((resolve, reject) => {
        const client = mqtt.connect(url, {
          ca: rootCaPem,
          servername: "localhost",
          protocolVersion: 4,
          reconnectPeriod: 0,
          connectTimeout: 10_000,
          ...options,
        });
        let accepted = false;
        client.once("connect", () => {
          accepted = true;
          client.end(true, {}, () => resolve());
        });
        client.once("close", () => {
          if (!accepted) reject(new Error(`refused: ${options.clientId} ${lastError}`));
        });
        let lastError = "";
        client.on("error", (error) => {
          lastError = error.message;
        });
      });
    const certificateConnect = () =>
      connectOnce({ clientId: thingName, key: keys.privateKeyPem, cert: certPem });
    const secretConnect = () => {
      const login = aliyunLogin();
      return connectOnce({ clientId: login.clientId, username: login.username, password: login.password });
    };
    await certificateConnect(); // first connection commits the vended device
    await secretConnect();
    // One connection at a time: a certificate device's client id is its thing name, and a second
    // connection with the same id drops the first (AWS IoT does the same). Interleaved in rounds
    // of 50 so both logins see the same machine state.
    const samples = { certificate: [] as number[], secret: [] as number[] };
    const elapsed = { certificate: 0, secret: 0 };
    for (let done = 0; done < connects; done += 50) {
      const round = Math.min(50, connects - done);
      for (const kind of ["certificate", "secret"] as const) {
        const { latencies, seconds } = await runLoad(
          round,
          1,
          kind === "certificate" ? certificateConnect : secretConnect,
        );
        samples[kind].push(...latencies);
        elapsed[kind] += seconds;
      }
    }
    const connectRows = (["certificate", "secret"] as const).map((kind) =>
      row(
        kind === "certificate" ? "certificate (mutual TLS)" : "secret (username/password, custom authorizer)",
        1,
        samples[kind].sort((x, y) => x - y),
        elapsed[kind],
      ),
    );
    services.close();
    print(rows, connectRows);
  } finally {
    if (child.connected) child.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

function row(what: string, concurrency: number, latencies: number[], seconds: number): Row {
  return {
    what,
    concurrency,
    count: latencies.length,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

function print(decisions: Row[], connects: Row[]): void {
  console.log(`\nMachine: ${machine()}`);
  console.log("\nAuthorizer decisions in-process (the handler, the local stack's registry):\n");
  console.log("| decision | concurrency | decisions | per second | p50 ms | p99 ms |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of decisions) {
    console.log(
      `| ${r.what} | ${r.concurrency} | ${r.count} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`,
    );
  }
  console.log("\nConnects through the local MQTT endpoint (new TLS connection, CONNECT to CONNACK):\n");
  console.log("| login | connects | per second | p50 ms | p99 ms |");
  console.log("|---|---:|---:|---:|---:|");
  for (const r of connects) {
    console.log(
      `| ${r.what} | ${r.count} | ${r.perSecond.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`,
    );
  }
  const cert = connects.find((r) => r.what.startsWith("certificate"));
  const secret = connects.find((r) => r.what.startsWith("secret"));
  if (cert && secret) {
    console.log(
      `\nsecret connects/s ÷ certificate connects/s = ${(secret.perSecond / cert.perSecond).toFixed(2)} (same run)`,
    );
  }
}
