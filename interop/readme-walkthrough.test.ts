import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DescribeCertificateCommand, IoTClient } from "@aws-sdk/client-iot";
import { type SpawnedStack, spawnStack } from "#test/support/spawned-stack.ts";

/**
 * README.md's local walkthrough, run as written: every ```sh block of the "Local walkthrough"
 * section, in order, in one `bash -e` from a scratch folder inside the project (so `npx onramp`
 * is this project's CLI and `.onramp/` is the scratch folder's), against `npm start` (the built
 * stack, scripts/start-local.mjs) started fresh on free ports with its data in that `.onramp/`.
 * Changed in the text: the default ports, and the placeholders a reader fills in from what was
 * printed (the demo secret npm start printed; the product secret `products create` printed,
 * kept by adding --json | tee to that one command). Each must still occur in the README.
 * Run with `npm run test:interop`; needs the aws CLI, mosquitto-clients and openssl.
 */
const root = fileURLToPath(new URL("..", import.meta.url));

const tools = [
  ["aws", ["--version"], "the aws CLI (pip install awscli, or AWS CLI v2)"],
  ["mosquitto_pub", ["--help"], "mosquitto_pub (apt-get install mosquitto-clients)"],
  ["openssl", ["version"], "openssl"],
] as const;
const missing = tools.filter(([command, args]) => spawnSync(command, args).error !== undefined);
const skip =
  missing.length > 0
    ? `README.md's walkthrough needs ${missing.map(([, , hint]) => hint).join(" and ")}`
    : false;

const TIMEOUT_MS = 240_000;

/** The ```sh blocks of the README section `## Local walkthrough`, in order. */
export function walkthroughBlocks(markdown: string): string[] {
  const start = markdown.indexOf("\n## Local walkthrough\n");
  assert.ok(start >= 0, "README.md has no '## Local walkthrough' section");
  const rest = markdown.slice(start + 1);
  const next = rest.indexOf("\n## ", 1);
  const section = next < 0 ? rest : rest.slice(0, next);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1] ?? "");
}

/** Replaces every occurrence of each key; throws when one no longer occurs in the script. */
function substitute(script: string, replacements: Record<string, string>): string {
  let result = script;
  for (const [from, to] of Object.entries(replacements)) {
    if (!result.includes(from)) throw new Error(`README.md's walkthrough no longer contains "${from}"`);
    result = result.split(from).join(to);
  }
  return result;
}

function runBash(
  script: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], { cwd, env });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS - 10_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The shell's environment: nothing of the machine's AWS or onramp settings leaks in. */
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

describe("README.md: the local walkthrough runs as written against a fresh stack", { skip }, () => {
  const work = join(root, ".tmp", `readme-${randomBytes(4).toString("hex")}`);
  let stack: SpawnedStack | undefined;
  let run: { code: number | null; output: string };

  before(async () => {
    mkdirSync(work, { recursive: true });
    stack = await spawnStack(join(work, ".onramp"));
  });
  after(async () => {
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("runs every command of the section, in order, without a failure", { timeout: TIMEOUT_MS }, async () => {
    assert.ok(stack);
    const demoSecret = /DEMO-0001 {2}(\S+)/.exec(stack.output())?.[1];
    assert.ok(demoSecret, stack.output());
    const e = stack.endpoints as Record<string, string>;
    const createThermo = 'npx onramp products create --product-key thermo-v2 --name "Thermostat v2"';
    const script = substitute(walkthroughBlocks(readFileSync(join(root, "README.md"), "utf8")).join("\n"), {
      "'<the demo secret printed by npm start>'": `'${demoSecret}'`,
      [createThermo]: `${createThermo} --json | tee thermo-v2.json`,
      "'<product secret>'": `"$(node -p 'require("./thermo-v2.json").productSecret')"`,
      "-p 8883": `-p ${new URL(e.mqtt ?? "").port}`,
      "http://127.0.0.1:4566": e.aws ?? "",
    });
    run = await runBash(script, work, cleanEnv(work));
    assert.equal(
      run.code,
      0,
      `the walkthrough failed (exit ${run.code}):\n${run.output}\n--- stack:\n${stack.output()}`,
    );
  });

  it("got where the README says: a vended and a JITR device, a disabled serial, a rendered template", async () => {
    assert.ok(stack && run?.code === 0, "the walkthrough did not run");
    // onramp status printed the healthy stack and its counts.
    assert.match(run.output, /api\s+http:\/\/127\.0\.0\.1:\d+\s+ok/);
    assert.match(run.output, /device-DEMO-0001\/device\.crt: OK/);
    // The JITR device: provisioned, and its certificate ACTIVE in the emulator.
    const lamp =
      /serialNumber\s+LAMP-0001[\s\S]*?status\s+provisioned[\s\S]*?certificateId\s+([0-9a-f]{64})/.exec(
        run.output,
      );
    assert.ok(lamp, run.output);
    const e = stack.endpoints as Record<string, string>;
    const iot = new IoTClient({
      endpoint: e.aws,
      region: e.region,
      credentials: { accessKeyId: e.accessKeyId ?? "", secretAccessKey: e.secretAccessKey ?? "" },
      maxAttempts: 1,
    });
    try {
      const described = await iot.send(new DescribeCertificateCommand({ certificateId: lamp[1] }));
      assert.equal(described.certificateDescription?.status, "ACTIVE");
    } finally {
      iot.destroy();
    }
    assert.match(run.output, /status\s+disabled/);
    // The rendered template names DEMO-0001's real certificate id; list-things shows both things.
    const demoId = JSON.parse(
      readFileSync(join(work, "device-DEMO-0001", "device.json"), "utf8"),
    ).certificateId;
    assert.ok(run.output.includes(demoId));
    assert.match(run.output, /"thingName": "LAMP-0001"/);
    assert.match(run.output, /"thingName": "DEMO-0001"/);
  });
});
