import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The file in the data folder where a running local stack says where it listens (read by the CLI). */
export const ENDPOINTS_FILE = "endpoints.json";
/** The `export AWS_ACCESS_KEY_ID=...` line for the `aws` CLI, next to the endpoints file. */
export const AWS_ENV_FILE = "aws.env";

/** What `npm start` adds to the stack's endpoints: who wrote the file and where the root CA is. */
export type EndpointsFileExtras = {
  /** The process serving these endpoints (the file is removed when it stops). */
  pid: number;
  /** The emulator's root CA (PEM): devices trust it for the MQTT endpoint. */
  rootCa: string;
  /** True for `--in-memory`: nothing but these files is kept in the data folder. */
  inMemory: boolean;
};

/** Writes `endpoints.json` and `aws.env` into `dir` (created 0700; files 0600, replaced atomically). */
export function writeEndpointsFile(dir: string, endpoints: object, awsEnvLine: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  writePrivate(join(dir, ENDPOINTS_FILE), `${JSON.stringify(endpoints, null, 2)}\n`);
  writePrivate(join(dir, AWS_ENV_FILE), `${awsEnvLine}\n`);
}

/**
 * Removes `endpoints.json` (and `aws.env` of an in-memory stack, whose key pair dies with it) if
 * they are still this process's: a stack started later on the same folder keeps its own.
 */
export function removeEndpointsFile(dir: string, pid: number): void {
  const file = join(dir, ENDPOINTS_FILE);
  try {
    const written = JSON.parse(readFileSync(file, "utf8")) as { pid?: number; inMemory?: boolean };
    if (written.pid !== pid) return;
    rmSync(file, { force: true });
    if (written.inMemory) rmSync(join(dir, AWS_ENV_FILE), { force: true });
  } catch {
    // no file, or not ours to judge: leave it
  }
}

/** The endpoints file's content, or undefined when there is none or it is not JSON. */
export function readEndpointsFile(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/**
 * True when a local stack answers `GET <api>/health` within `timeoutMs`. A stopped stack's port
 * refuses at once; a hung one is given up on after the timeout.
 */
export async function isLocalStackUp(apiUrl: string, timeoutMs = 1500): Promise<boolean> {
  try {
    const response = await fetch(new URL("/health", apiUrl), { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

function writePrivate(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, path);
}
