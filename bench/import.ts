/**
 * npm run bench:import — imports N serials (default 100,000) from a CSV into a local stack with
 * its data on disk, through the real `onramp registry import` command, and re-runs it to time
 * the idempotent pass. Usage: npm run bench:import -- [--rows N] [--in-memory]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { silentLogger } from "#core/logger.ts";
import { createProduct } from "#core/registry/manage-products.ts";
import { startLocalStack } from "#local/stack.ts";
import { machine } from "./stats.ts";

const { values } = parseArgs({
  options: { rows: { type: "string", default: "100000" }, "in-memory": { type: "boolean", default: false } },
});
const rows = Number(values.rows);
const dir = mkdtempSync(join(tmpdir(), "onramp-bench-import-"));
const csv = join(dir, "serials.csv");
const lines = ["serialNumber,productKey"];
for (let i = 0; i < rows; i++) lines.push(`BENCH-${String(i).padStart(7, "0")},bench-import`);
writeFileSync(csv, `${lines.join("\n")}\n`);

const dataDir = join(dir, "data");
const stack = await startLocalStack({
  ...(values["in-memory"] ? {} : { dataDir }),
  logger: silentLogger,
  ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0 },
});
await createProduct(stack.services, { productKey: "bench-import", name: "Import benchmark" });
const endpointsFile = join(dir, "endpoints.json");
writeFileSync(endpointsFile, JSON.stringify(stack.endpoints));

console.log(
  `import benchmark: ${rows} rows, ${values["in-memory"] ? "in memory" : "LevelDB on disk"}; ${machine()}`,
);
for (const pass of ["first import", "re-run (all present)"]) {
  const started = performance.now();
  // Not spawnSync: the stack runs in this process and must answer the CLI's health check.
  const result = await run(process.execPath, [
    ...["--import", "tsx", "cli/main.ts", "registry", "import", csv],
    ...["--endpoints", endpointsFile, "--json"],
  ]);
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) {
    console.error(result.stderr);
    process.exitCode = 1;
    break;
  }
  const report = JSON.parse(result.stdout) as {
    written: number;
    skippedExisting: number;
    rejected: unknown[];
  };
  console.log(
    `${pass.padEnd(22)} ${seconds.toFixed(1).padStart(6)} s  ${(rows / seconds).toFixed(0).padStart(6)} rows/s  written ${report.written}, present ${report.skippedExisting}, rejected ${report.rejected.length}`,
  );
}
await stack.close();
rmSync(dir, { recursive: true, force: true });

function run(
  command: string,
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}
