import type { AddressInfo } from "node:net";
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import dynalite from "dynalite";
import { registryTableDefinition } from "#adapters/registry-table.ts";
import { DynamoFaultProxy } from "./dynamodb-faults.ts";
import { localCredentials, localRegion } from "./local-aws.ts";

export type LocalDynamo = {
  endpoint: string;
  /** Present when started with `faultInjection`: the endpoint then goes through it. */
  faults?: DynamoFaultProxy;
  client: DynamoDBClient;
  documentClient: DynamoDBDocumentClient;
  close(): Promise<void>;
};

/** Starts dynalite (persisted under `path`, in memory without it) and creates the registry table. */
export async function startLocalDynamo(options: {
  path?: string;
  port: number;
  host: string;
  tableName: string;
  faultInjection?: boolean;
}): Promise<LocalDynamo> {
  const server = dynalite({
    ...(options.path ? { path: options.path } : {}),
    createTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const direct = `http://${options.host}:${port}`;
  const faults = options.faultInjection ? new DynamoFaultProxy(direct) : undefined;
  const endpoint = faults ? await faults.listen(options.host) : direct;
  const client = new DynamoDBClient({
    endpoint,
    region: localRegion,
    credentials: localCredentials,
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
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
  } catch (error) {
    if (!(error instanceof Error) || error.name !== "ResourceNotFoundException") throw error;
    await client.send(new CreateTableCommand(registryTableDefinition(tableName)));
  }
}
