import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  DescribeCertificateCommand,
  DescribeThingCommand,
  IoTClient,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
} from "@aws-sdk/client-iot";
import { readCertificate } from "#core/pki/certificate-reader.ts";
import { localRegion } from "#local/local-aws.ts";
import type { LocalEndpoints } from "#local/stack.ts";

/**
 * Interoperability: docs/by-hand.md, run as written. Every ```sh block of the page except the
 * one that starts the stack runs in order in one `bash -e` (the `aws` CLI, `openssl`,
 * `mosquitto_pub` and `npx onramp` are the real peers), against `local/main.ts` — what
 * `npm start` runs — started here with a fresh data folder on free ports. The only changes to
 * the page's text are those defaults: the AWS endpoint, the MQTT port, the data folder and the
 * scratch folder (each must still occur in the page, so the page and this test stay in step).
 * Then the outcome is checked through the AWS SDK and the stack's log.
 * Run with `npm run test:interop`; needs the aws CLI (v1 or v2), mosquitto-clients and openssl.
 */
const root = fileURLToPath(new URL("..", import.meta.url));
const pagePath = join(root, "docs", "by-hand.md");

const tools = [
  ["aws", ["--version"], "the aws CLI (pip install awscli, or AWS CLI v2)"],
  ["mosquitto_pub", ["--help"], "mosquitto_pub (apt-get install mosquitto-clients)"],
  ["openssl", ["version"], "openssl"],
] as const;
const missing = tools.filter(([command, args]) => spawnSync(command, args).error !== undefined);
const skip =
  missing.length > 0 ? `docs/by-hand.md needs ${missing.map(([, , hint]) => hint).join(" and ")}` : false;

/** How long the whole page may take (it takes about 30 s on 2 cores, most of it aws CLI start-ups). */
const PAGE_TIMEOUT_MS = 180_000;
const FIRST_CONNECTION_DROPPED = "first connection dropped, as expected";

const certificateIdOf = (pem: string) => readCertificate(pem).id;

/** The page's ```sh blocks, in order, without the one that starts the stack (`npm start`). */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)]
    .map((match) => match[1] ?? "")
    .filter((block) => !block.startsWith("npm start"));
}

/** Replaces every occurrence of each key; throws when one no longer occurs in the script. */
function substitute(script: string, replacements: Record<string, string>): string {
  let result = script;
  for (const [from, to] of Object.entries(replacements)) {
    if (!result.includes(from)) throw new Error(`docs/by-hand.md no longer contains "${from}"`);
    result = result.split(from).join(to);
  }
  return result;
}

type Run = { code: number | null; output: string };

/** Runs a bash script in `cwd`; resolves with its exit code and interleaved stdout + stderr. */
function runBash(script: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], { cwd, env });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The environment of the page's shell: no AWS settings of the machine's user leak in. */
function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("AWS_") && !key.startsWith("ONRAMP_")) env[key] = value;
  }
  return {
    ...env,
    AWS_CONFIG_FILE: join(home, "aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "aws-credentials"),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  };
}

/** Starts `local/main.ts` (what `npm start` runs) on free ports; resolves when it is up. */
function startStack(
  dataDir: string,
): Promise<{ child: ChildProcess; endpoints: LocalEndpoints; log(): string }> {
  const args = ["--import", "tsx", "local/main.ts", "--data-dir", dataDir, "--no-demo"];
  for (const name of ["api", "aws", "dynamodb", "mqtt"]) args.push(`--${name}-port`, "0");
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  });
  let log = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    log += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString("utf8");
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(check);
      child.kill("SIGTERM");
      reject(new Error(`the local stack did not start within 60 s:\n${log}`));
    }, 60_000);
    const check = setInterval(() => {
      if (!log.includes("Press Ctrl+C to stop.")) return;
      clearInterval(check);
      clearTimeout(timer);
      const endpoints = JSON.parse(readFileSync(join(dataDir, "endpoints.json"), "utf8")) as LocalEndpoints;
      resolve({ child, endpoints, log: () => log });
    }, 50);
    child.once("exit", (code) => {
      clearInterval(check);
      clearTimeout(timer);
      reject(new Error(`the local stack exited (${code}):\n${log}`));
    });
  });
}

/** Stops the stack with SIGTERM (it closes dynalite and saves its state), SIGKILL after 10 s. */
function stopStack(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

describe("docs/by-hand.md: JITR and JITP with openssl, the aws CLI and mosquitto_pub", { skip }, () => {
  let stack: Awaited<ReturnType<typeof startStack>> | undefined;
  let home: string;
  let iot: IoTClient;
  /** The page's scratch folder, relative to the repository (npx onramp runs only inside it). */
  let work: string;
  let run: Run;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), "onramp-by-hand-"));
    work = join(".tmp", `by-hand-test-${randomBytes(4).toString("hex")}`);
    stack = await startStack(join(home, "data"));
    iot = new IoTClient({
      endpoint: stack.endpoints.aws,
      region: localRegion,
      credentials: {
        accessKeyId: stack.endpoints.accessKeyId,
        secretAccessKey: stack.endpoints.secretAccessKey,
      },
      maxAttempts: 1,
    });
  });
  after(async () => {
    iot?.destroy();
    await stopStack(stack?.child);
    rmSync(home, { recursive: true, force: true });
    if (work) rmSync(join(root, work), { recursive: true, force: true });
  });

  const file = (name: string) => readFileSync(join(root, work, name), "utf8");
  const statusOf = async (certificateId: string) =>
    (await iot.send(new DescribeCertificateCommand({ certificateId }))).certificateDescription?.status;

  it("runs every command of the page, in order, without a failure", {
    timeout: PAGE_TIMEOUT_MS,
  }, async () => {
    assert.ok(stack);
    const mqttPort = new URL(stack.endpoints.mqtt).port;
    const script = substitute(shellBlocks(readFileSync(pagePath, "utf8")).join("\n"), {
      "http://127.0.0.1:4566": stack.endpoints.aws,
      "-p 8883": `-p ${mqttPort}`,
      "$PWD/.onramp": join(home, "data"),
      ".tmp/by-hand": work,
    });
    run = await runBash(script, root, cleanEnv(home), PAGE_TIMEOUT_MS - 5_000);
    assert.equal(
      run.code,
      0,
      `the page failed (exit ${run.code}):\n${run.output}\n--- stack log:\n${stack.log()}`,
    );
    // JITR, the unknown serial, JITP by body, JITP by template name: each first connection dropped.
    assert.equal(run.output.split(FIRST_CONNECTION_DROPPED).length - 1, 4, run.output);
    assert.equal(run.output.match(/received CONNACK \(0\)/g)?.length, 3, run.output);
    assert.equal(run.output.match(/received PUBACK/g)?.length, 3, run.output);
    assert.match(run.output, /^ACTIVE\tENABLE$/m, "the JITR CA: active, auto-registration on");
    assert.match(run.output, /^REVOKED$/m, "the unknown serial's certificate");
    assert.match(run.output, /"endpointAddress": "localhost:\d+"/);
  });

  it("JITR: the certificate of JITR-0001 is ACTIVE, attached to its thing with the device policy", async () => {
    assert.equal(run?.code, 0, "the page did not run");
    const certificateId = certificateIdOf(file("device.crt"));
    assert.equal(await statusOf(certificateId), "ACTIVE");
    const thing = await iot.send(new DescribeThingCommand({ thingName: "JITR-0001" }));
    assert.deepEqual(thing.attributes, { productKey: "jitr-sensor", serialNumber: "JITR-0001" });
    const certificateArn = thing.thingArn?.replace(/thing\/.*/, `cert/${certificateId}`);
    const principals = await iot.send(new ListThingPrincipalsCommand({ thingName: "JITR-0001" }));
    assert.deepEqual(principals.principals, [certificateArn]);
    const policies = await iot.send(new ListAttachedPoliciesCommand({ target: certificateArn }));
    assert.deepEqual(
      policies.policies?.map((p) => p.policyName),
      ["onramp-device-policy"],
    );
    assert.equal(await statusOf(certificateIdOf(file("stranger.crt"))), "REVOKED");
  });

  it("JITP: both templates (body, name) provisioned their device on the first connection", async () => {
    assert.equal(run?.code, 0, "the page did not run");
    assert.equal(await statusOf(certificateIdOf(file("jitpDevice.crt"))), "ACTIVE");
    const first = await iot.send(new DescribeThingCommand({ thingName: "JITP-0001" }));
    assert.deepEqual(first.attributes, {
      serialNumber: "JITP-0001",
      country: "DE",
      organization: "Acme",
      provisionedBy: "jitp",
    });
    assert.equal(await statusOf(certificateIdOf(file("ecDevice.crt"))), "ACTIVE");
    const second = await iot.send(new DescribeThingCommand({ thingName: "JITP-0002" }));
    assert.equal(second.attributes?.provisionedBy, "jitp");
  });

  it("the stack logged each decision the page describes (terminal 1)", () => {
    assert.equal(run?.code, 0, "the page did not run");
    const log = stack?.log() ?? "";
    assert.match(log, /mqtt: connect clientId=JITR-0001 outcome=refused .*reason=jitr-registered/);
    assert.match(log, /jitr: certificate activated serialNumber=JITR-0001/);
    assert.match(log, /mqtt: connect clientId=JITR-0001 outcome=accepted/);
    assert.match(
      log,
      /jitr: certificate rejected and revoked reason=unknown-device .*serialNumber=JITR-9999/,
    );
    assert.match(log, /mqtt: connect clientId=JITP-0001 outcome=refused .*reason=jitp-provisioned/);
    assert.match(log, /mqtt: connect clientId=JITP-0002 outcome=accepted/);
  });
});
