import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { registryTable } from "#adapters/registry-table.ts";
import { createTableInput, type TableDesign } from "#adapters/table-design.ts";
import { DynamoFaultProxy } from "./dynamodb-faults.ts";
import { localRegion } from "./local-aws.ts";

/** dynalite does not check signatures; the SDK only needs well-formed credentials to sign. */
const dynaliteCredentials = { accessKeyId: "DYNALITE", secretAccessKey: "dynalite-does-not-check" };

export type LocalDynamo = {
  endpoint: string;
  /** Present when started with `faultInjection`: the endpoint then goes through it. */
  faults?: DynamoFaultProxy;
  client: DynamoDBClient;
  documentClient: DynamoDBDocumentClient;
  close(): Promise<void>;
};

/**
 * Starts dynalite in a child process (persisted under `path`, in memory without it) and creates
 * the registry table. Its own process lets DynamoDB work run on another core.
 */
export async function startLocalDynamo(options: {
  path?: string;
  port: number;
  host: string;
  tableName: string;
  faultInjection?: boolean;
}): Promise<LocalDynamo> {
  const { child, port } = await forkDynalite(options.host, options.port, options.path);
  const direct = `http://${options.host}:${port}`;
  const faults = options.faultInjection ? new DynamoFaultProxy(direct) : undefined;
  const endpoint = faults ? await faults.listen(options.host) : direct;
  const client = new DynamoDBClient({
    endpoint,
    region: localRegion,
    credentials: dynaliteCredentials,
    maxAttempts: 5,
  });
  await ensureTable(client, options.tableName);
  return {
    endpoint,
    ...(faults ? { faults } : {}),
    client,
    documentClient: DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }),
    async close() {
      client.destroy();
      await faults?.close();
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.disconnect();
      });
    },
  };
}

/**
 * Creates a table of `design` unless it exists, and returns once it is ACTIVE: dynalite answers
 * CreateTable with CREATING and flips to ACTIVE on a timer (createTableMs 0 is still a timer, late
 * under load), and a call on a CREATING table fails with ResourceNotFoundException.
 */
export async function ensureTable(
  client: DynamoDBClient,
  tableName: string,
  design: TableDesign = registryTable,
): Promise<void> {
  const status = async () => {
    try {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      return Table?.TableStatus;
    } catch (error) {
      if (error instanceof Error && error.name === "ResourceNotFoundException") return undefined;
      throw error;
    }
  };
  if ((await status()) === undefined) {
    try {
      await client.send(new CreateTableCommand(createTableInput(design, tableName)));
    } catch (error) {
      // Created meanwhile by another caller: wait for it like for ours.
      if (!(error instanceof Error) || error.name !== "ResourceInUseException") throw error;
    }
  }
  const deadline = Date.now() + 10_000;
  while ((await status()) !== "ACTIVE") {
    if (Date.now() > deadline) throw new Error(`DynamoDB table ${tableName} did not become ACTIVE in 10 s.`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const dynaliteScript = fileURLToPath(new URL("./dynalite-process.mjs", import.meta.url));

function forkDynalite(
  host: string,
  port: number,
  path?: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(dynaliteScript, [host, String(port), path ?? ""], {
    execArgv: [],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    child.once("message", (message: { port?: number; error?: string }) => {
      if (message.port) resolve({ child, port: message.port });
      else reject(new Error(`DynamoDB (dynalite) did not start: ${message.error ?? "unknown error"}`));
    });
    child.once("exit", (code) => reject(new Error(`DynamoDB (dynalite) exited with code ${code}`)));
  });
}
