import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type SpawnedStack, spawnStack } from "#test/support/spawned-stack.ts";

/**
 * README.md's "Bind a device to a user", run as written against `npm start` (the built stack on
 * free ports, its data in a scratch folder's `.onramp/`): each command is taken from the README
 * (the test fails if one no longer occurs there), the placeholders filled from what was printed
 * (the demo secrets npm start printed, the token the phone heard or made). The device runs in the
 * background as in a second terminal; the UDP ports are the README's (5683, 5686, 5687).
 * Run with `npm run test:interop`.
 */
const root = fileURLToPath(new URL("..", import.meta.url));
const TIMEOUT_MS = 180_000;

/** A README command: its text as printed (continuation lines joined), checked to be in the README. */
function readmeCommand(readme: string, text: string): string {
  assert.ok(readme.includes(text), `README.md's binding walkthrough no longer contains:\n${text}`);
  return text.replace(/ \\\n\s*/g, " ");
}

function fill(command: string, values: Record<string, string>): string {
  let result = command;
  for (const [from, to] of Object.entries(values)) {
    assert.ok(result.includes(from), `"${from}" in ${command}`);
    result = result.split(from).join(to);
  }
  return result;
}

type Shell = { child: ChildProcess; output(): string; exited: Promise<number | null> };

/** Ctrl-C in the shell's terminal: SIGINT to its whole process group. */
function interrupt(sh: Shell): void {
  if (sh.child.exitCode !== null || sh.child.pid === undefined) return;
  try {
    process.kill(-sh.child.pid, "SIGINT");
  } catch {
    // already gone
  }
}

function shell(command: string, cwd: string): Shell {
  const child = spawn("bash", ["-e", "-o", "pipefail", "-c", command], {
    cwd,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: Ctrl-C reaches npx and the node process under it, as in a terminal.
    detached: true,
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function run(command: string, cwd: string): Promise<string> {
  const sh = shell(command, cwd);
  const code = await sh.exited;
  assert.equal(code, 0, `${command}\n${sh.output()}`);
  return sh.output();
}

/** Resolves when the shell printed a line matching `pattern` (or fails when it exits first). */
function waitFor(sh: Shell, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = pattern.exec(sh.output());
      if (match) {
        sh.child.stdout?.off("data", check);
        resolve(match);
      }
    };
    sh.child.stdout?.on("data", check);
    void sh.exited.then(() => {
      const match = pattern.exec(sh.output());
      if (match) resolve(match);
      else reject(new Error(`exited without ${pattern}:\n${sh.output()}`));
    });
    check();
  });
}

describe("README.md: binding a device to a user runs as written", () => {
  const work = join(root, ".tmp", `binding-${randomBytes(4).toString("hex")}`);
  let stack: SpawnedStack | undefined;
  const background: Shell[] = [];

  before(async () => {
    mkdirSync(work, { recursive: true });
    stack = await spawnStack(join(work, ".onramp"));
  });
  after(async () => {
    for (const sh of background) {
      interrupt(sh);
      await sh.exited;
    }
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("users, the device, path 1, path 2, unbind, path 3, reset", { timeout: TIMEOUT_MS }, async () => {
    assert.ok(stack);
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const secret = (name: string) => {
      const found = new RegExp(`${name} {2}(\\S+)`).exec(stack?.output() ?? "")?.[1];
      assert.ok(found, `npm start printed ${name}'s secret`);
      return found;
    };
    const cmd = (text: string, values: Record<string, string> = {}) =>
      fill(readmeCommand(readme, text), values);

    await run(cmd("npx onramp users create alice"), work);
    const device = shell(
      cmd(
        "npx onramp device simulate --bind --product-key demo-aliyun --device-name lamp-0001 \\\n  --device-secret '<lamp-0001 secret>' --lan-port 5683 --notify-to 127.0.0.1:5686",
        { "<lamp-0001 secret>": secret("lamp-0001") },
      ),
      work,
    );
    background.push(device);
    await waitFor(device, /awss_report_token_reply/);

    // Path 1: the notify.
    const heard = await run(cmd("npx onramp phone discover --listen 5686 --first --timeout 60"), work);
    const token = /notify {2}demo-aliyun\/lamp-0001 {2}token ([0-9A-F]{32})/.exec(heard)?.[1];
    assert.ok(token, heard);
    await run(
      cmd(
        "npx onramp phone bind --product-key demo-aliyun --device-name lamp-0001 --token <token> --user alice",
        { "<token>": token },
      ),
      work,
    );
    assert.match(
      await run(cmd("npx onramp phone devices --user alice"), work),
      /demo-aliyun\/lamp-0001 {2}bound/,
    );

    // Path 2: ask the device.
    await waitFor(device, /update token[\s\S]*awss_report_token_reply/);
    const asked = await run(cmd("npx onramp phone discover --no-listen --device 127.0.0.1:5683"), work);
    const fresh = /get +demo-aliyun\/lamp-0001 {2}token ([0-9A-F]{32})/.exec(asked)?.[1];
    assert.ok(fresh, asked);
    assert.notEqual(fresh, token);

    await run(
      cmd("npx onramp phone unbind --product-key demo-aliyun --device-name lamp-0001 --user alice"),
      work,
    );
    assert.match(await run(cmd("npx onramp phone devices --user alice"), work), /no devices bound/);

    // Path 3: the phone's token, the device reports it.
    const phone = shell(cmd("npx onramp phone token --user alice"), work);
    background.push(phone);
    const made = (await waitFor(phone, /token ([0-9A-F]{32}) registered/))[1] as string;
    const second = shell(
      cmd(
        "npx onramp device simulate --bind --product-key demo-aliyun --device-name lamp-0002 \\\n  --device-secret '<lamp-0002 secret>' --phone-token <token> --lan-port 5687 --no-multicast",
        { "<lamp-0002 secret>": secret("lamp-0002"), "<token>": made },
      ),
      work,
    );
    background.push(second);
    assert.equal(await phone.exited, 0, phone.output());
    assert.match(phone.output(), /bound: demo-aliyun\/lamp-0002 to user/);
    // npx and bash die of the signal, as in a terminal; the device itself stops cleanly.
    interrupt(second);
    await second.exited;
    assert.match(second.output(), /stopped \(Ctrl-C\)/);

    // The reset removes the binding.
    await run(
      cmd(
        "npx onramp device simulate --reset --product-key demo-aliyun --device-name lamp-0002 --device-secret '<lamp-0002 secret>'",
        { "<lamp-0002 secret>": secret("lamp-0002") },
      ),
      work,
    );
    assert.match(await run(cmd("npx onramp phone devices --user alice"), work), /no devices bound/);

    interrupt(device);
    await device.exited;
    assert.match(device.output(), /stopped \(Ctrl-C\)/);
  });
});
