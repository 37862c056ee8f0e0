import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

/** `npm start` as a user runs it (scripts/start-local.mjs, the built stack), on free ports. */
export type SpawnedStack = {
  child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  endpointsFile: string;
  endpoints: Record<string, unknown>;
  /** SIGTERM (or `signal`) and wait for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
};

export async function spawnStack(dataDir: string, args: string[] = []): Promise<SpawnedStack> {
  const child = spawn(
    process.execPath,
    [
      join(PROJECT_ROOT, "scripts/start-local.mjs"),
      "--data-dir",
      dataDir,
      ...[
        "--api-port",
        "0",
        "--aws-port",
        "0",
        "--dynamodb-port",
        "0",
        "--mqtt-port",
        "0",
        "--coap-port",
        "0",
      ],
      ...args,
    ],
    { cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = once(child, "exit");
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (output.includes("Press Ctrl+C to stop.")) return resolve();
      if (child.exitCode !== null) return reject(new Error(`the stack exited:\n${output}`));
      setTimeout(check, 100);
    };
    check();
  });
  const endpointsFile = join(dataDir, "endpoints.json");
  return {
    child,
    output: () => output,
    endpointsFile,
    endpoints: JSON.parse(readFileSync(endpointsFile, "utf8")) as Record<string, unknown>,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

/** Runs the `onramp` binary (bin/onramp.mjs, the built CLI) to completion. */
export function runBin(args: string[], cwd = PROJECT_ROOT) {
  const result = spawnSync(process.execPath, [join(PROJECT_ROOT, "bin/onramp.mjs"), ...args], {
    cwd,
    env,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Like runBin, without blocking this process's event loop: for a stack served by this process
 * (startTestStack), which must keep answering while the CLI runs.
 */
export function runBinAsync(args: string[], cwd = PROJECT_ROOT) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(PROJECT_ROOT, "bin/onramp.mjs"), ...args],
      { cwd, env, encoding: "utf8", timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs `npm start -- args` (scripts/start-local.mjs) until it exits (for --help, refusals). */
export function runStart(args: string[]) {
  const result = spawnSync(process.execPath, [join(PROJECT_ROOT, "scripts/start-local.mjs"), ...args], {
    cwd: PROJECT_ROOT,
    env,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
