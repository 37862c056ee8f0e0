/**
 * npm run bench:import — imports N serials (default 1,000,000) of ONE product from a CSV into a
 * local stack with its data on disk, through the real `onramp registry import` command (its own
 * process), then shows how the rows spread over the product's gsi1 keys (rows per shard key; before
 * sharding all of them sat on one key), and re-runs the file to time the all-present pass.
 * Usage: npm run bench:import -- [--rows N] [--in-memory] [--no-rerun]
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { DEVICE_SHARDS, keys, productDevices, registryTable } from "#adapters/registry-table.ts";
import { silentLogger } from "#core/logger.ts";
import { createProduct } from "#core/registry/manage-products.ts";
import { localRegion } from "#local/local-aws.ts";
import { startLocalStack } from "#local/stack.ts";
import { machine } from "./stats.ts";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    "in-memory": { type: "boolean", default: false },
    "no-rerun": { type: "boolean", default: false },
  },
});
const rows = Number(values.rows);
const product = "bench-import";
const dir = mkdtempSync(join(tmpdir(), "onramp-bench-import-"));
const csv = join(dir, "serials.csv");
await writeCsv(csv, rows);

const dataDir = join(dir, "data");
const stack = await startLocalStack({
  ...(values["in-memory"] ? {} : { dataDir }),
  logger: silentLogger,
  ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0 },
});
await createProduct(stack.services, { productKey: product, name: "Import benchmark" });
const endpointsFile = join(dir, "endpoints.json");
writeFileSync(endpointsFile, JSON.stringify(stack.endpoints));

console.log(
  `import benchmark: ${rows.toLocaleString("en")} rows of one product, ${values["in-memory"] ? "in memory" : "LevelDB on disk"}; ${machine()}`,
);
type Report = {
  written: number;
  skippedExisting: number;
  unprocessedRetries: number;
  throttledRetries: number;
  rejected: unknown[];
};
const passes = values["no-rerun"] ? ["first import"] : ["first import", "re-run (all present)"];
for (const pass of passes) {
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
  const report = JSON.parse(result.stdout) as Report;
  console.log(
    `${pass.padEnd(22)} ${seconds.toFixed(1).padStart(7)} s  ${(rows / seconds).toFixed(0).padStart(6)} rows/s  written ${report.written}, present ${report.skippedExisting}, rejected ${report.rejected.length}; retried: ${report.unprocessedRetries} unprocessed batches, ${report.throttledRetries} throttled calls`,
  );
  if (pass === "first import") await showDistribution();
}
await stack.close();
rmSync(dir, { recursive: true, force: true });

/** Rows per gsi1 key of the product (Query with Select COUNT, paged), and one row's size. */
async function showDistribution(): Promise<void> {
  // dynalite checks no credentials; the SDK needs well-formed ones to sign.
  const client = new DynamoDBClient({
    endpoint: stack.endpoints.dynamodb,
    region: localRegion,
    credentials: { accessKeyId: "DYNALITE", secretAccessKey: "dynalite-does-not-check" },
  });
  const documentClient = DynamoDBDocumentClient.from(client);
  const table = stack.endpoints.tableName;
  const counts: number[] = [];
  for (let shard = 0; shard <= DEVICE_SHARDS; shard++) {
    const partition =
      shard < DEVICE_SHARDS ? productDevices.shardKey(product, shard) : productDevices.legacyKey(product);
    let count = 0;
    let cursor: Record<string, unknown> | undefined;
    do {
      const page = await documentClient.send(
        new QueryCommand({
          TableName: table,
          IndexName: registryTable.gsi1.name,
          KeyConditionExpression: "gsi1pk = :p",
          ExpressionAttributeValues: { ":p": partition },
          Select: "COUNT",
          ExclusiveStartKey: cursor,
        }),
      );
      count += page.Count ?? 0;
      cursor = page.LastEvaluatedKey;
    } while (cursor);
    counts.push(count);
  }
  const shards = counts.slice(0, DEVICE_SHARDS);
  const legacy = counts[DEVICE_SHARDS] ?? 0;
  const mean = rows / DEVICE_SHARDS;
  console.log(
    `gsi1 keys of ${product}: ${DEVICE_SHARDS} shard keys, rows per key min ${Math.min(...shards)} / max ${Math.max(...shards)} (mean ${mean.toFixed(0)}, max/mean ${(Math.max(...shards) / mean).toFixed(3)}); pre-sharding key ${legacy} (before sharding: all ${rows})`,
  );
  const { Item } = await documentClient.send(
    new GetCommand({ TableName: table, Key: keys.device("BENCH-0000000") }),
  );
  const size = Item ? itemSize(Item) : 0;
  client.destroy();
  console.log(
    `one imported row: ${size} bytes (DynamoDB item size) → ${Math.ceil(size / 1024)} WCU in the table + ${Math.ceil(size / 1024)} WCU in gsi1 (ALL projection) per row`,
  );
}

/** DynamoDB's item size: attribute names plus values (strings in UTF-8, numbers ~ digits/2 + 1). */
function itemSize(item: Record<string, unknown>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    size += Buffer.byteLength(name);
    if (typeof value === "string") size += Buffer.byteLength(value);
    else if (typeof value === "number") size += Math.ceil(String(value).replace(/[-.]/g, "").length / 2) + 1;
    else if (typeof value === "boolean") size += 1;
    else size += Buffer.byteLength(JSON.stringify(value));
  }
  return size;
}

/** Sorted serials (the worst case for one key: every write lands at the end of its key range). */
async function writeCsv(path: string, count: number): Promise<void> {
  const out = createWriteStream(path);
  out.write("serialNumber,productKey\n");
  for (let i = 0; i < count; i++) {
    if (!out.write(`BENCH-${String(i).padStart(7, "0")},${product}\n`)) {
      await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    }
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
}

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
