import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { registryTable } from "#adapters/registry-table.ts";
import { createTableInput } from "#adapters/table-design.ts";
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

async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
  } catch (error) {
    if (!(error instanceof Error) || error.name !== "ResourceNotFoundException") throw error;
    await client.send(new CreateTableCommand(createTableInput(registryTable, tableName)));
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
