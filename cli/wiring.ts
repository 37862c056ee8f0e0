import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { Command } from "commander";
import { makeServices, type Services } from "#adapters/services.ts";
import { isLocalStackUp } from "#local/endpoints-file.ts";
import { loadProvisioningTemplate } from "#templates/catalog.ts";
import { awsTarget } from "./aws-target.ts";
import { CliError } from "./cli-error.ts";

/** Where the CLI's commands act: the local stack (from its endpoints file) or an AWS account. */
export type Target = {
  kind: "local" | "aws";
  apiUrl?: string;
  region: string;
  tableName: string;
  productSecretPrefix: string;
  registryKeyName: string;
  /** The role AWS IoT assumes for JITP templates (deployed stack output). */
  jitpRoleArn?: string;
  /** Endpoint override for AWS service clients (the local stack's AWS endpoint). */
  awsEndpoint?: string;
  dynamodbEndpoint?: string;
  /** The local stack's key pair (its AWS endpoint accepts only requests signed with it). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
};

export type TargetOptions = {
  endpoints?: string;
  aws?: boolean;
  region?: string;
  profile?: string;
  stackPrefix?: string;
};

export const DEFAULT_ENDPOINTS_FILE = ".onramp/endpoints.json";

/** Adds the options that choose a target (the local stack by default, or a deployed stack) to a command. */
export function withTargetOptions(command: Command): Command {
  return command
    .option(
      "--endpoints <file>",
      "local stack endpoints file written by `npm start`",
      process.env.ONRAMP_ENDPOINTS ?? DEFAULT_ENDPOINTS_FILE,
    )
    .option("--aws", "act on the stacks deployed with `cdk deploy` instead of the local stack")
    .option("--region <region>", "with --aws: the stacks' region (default: the AWS SDK's)")
    .option("--profile <profile>", "with --aws: the AWS profile to use")
    .option("--stack-prefix <prefix>", "with --aws: the stacks' name prefix", "IotOnramp");
}

/** The target the options choose: a deployed stack (`--aws`) or the local stack's endpoints file. */
export async function resolveTarget(options: TargetOptions): Promise<Target> {
  if (options.aws || process.env.ONRAMP_TARGET === "aws") {
    return awsTarget({
      ...(options.region ? { region: options.region } : {}),
      ...(options.profile ? { profile: options.profile } : {}),
      ...(options.stackPrefix ? { stackPrefix: options.stackPrefix } : {}),
    });
  }
  const target = localTarget(options);
  // A stack stopped by kill -9 (or a crash) leaves its endpoints file behind: say so at once
  // instead of letting the SDK retry against a closed port.
  if (target.apiUrl && !(await isLocalStackUp(target.apiUrl))) {
    throw new CliError(
      `no local stack is running at ${target.apiUrl} (${resolve(options.endpoints ?? DEFAULT_ENDPOINTS_FILE)} is left from a stack that stopped): start it with \`npm start\`.`,
      1,
      "NO_LOCAL_STACK",
    );
  }
  return target;
}

/** Reads the local stack's endpoints file. */
export function localTarget(options: TargetOptions): Target {
  const file = resolve(options.endpoints ?? DEFAULT_ENDPOINTS_FILE);
  if (!existsSync(file)) {
    throw new CliError(
      `no local stack is running (no endpoints file at ${file}): start it with \`npm start\`, or pass --endpoints.`,
      1,
      "NO_LOCAL_STACK",
    );
  }
  let e: Record<string, string>;
  try {
    e = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
  } catch {
    throw new CliError(`${file} is not valid JSON.`);
  }
  const need = (key: string) => {
    const value = e[key];
    if (!value) throw new CliError(`${file} has no "${key}".`);
    return value;
  };
  return {
    kind: "local",
    apiUrl: need("api"),
    region: need("region"),
    tableName: need("tableName"),
    productSecretPrefix: need("productSecretPrefix"),
    registryKeyName: need("registryKeyName"),
    awsEndpoint: need("aws"),
    dynamodbEndpoint: need("dynamodb"),
    credentials: { accessKeyId: need("accessKeyId"), secretAccessKey: need("secretAccessKey") },
  };
}

/** Client settings for a target: region, and for the local stack its endpoint and key pair. */
function clientConfig(target: Target, endpoint: string | undefined) {
  return {
    region: target.region,
    ...(target.credentials ? { credentials: target.credentials } : {}),
    ...(endpoint ? { endpoint } : {}),
  };
}

/** An AWS IoT control-plane client for a target. */
export function cliIotClient(target: Target): IoTClient {
  return new IoTClient({ ...clientConfig(target, target.awsEndpoint), maxAttempts: 5 });
}

/** The CLI runtime's wiring: the same adapters as Lambda and the local stack. */
export function cliServices(target: Target): Services & { close(): void } {
  const dynamoClient = new DynamoDBClient({
    ...clientConfig(target, target.dynamodbEndpoint),
    maxAttempts: 8,
  });
  const iot = cliIotClient(target);
  const secretsManager = new SecretsManagerClient(clientConfig(target, target.awsEndpoint));
  const services = makeServices(
    {
      dynamo: DynamoDBDocumentClient.from(dynamoClient, { marshallOptions: { removeUndefinedValues: true } }),
      iot,
      secretsManager,
    },
    {
      tableName: target.tableName,
      secretNames: {
        productSecretPrefix: target.productSecretPrefix,
        registryKeyName: target.registryKeyName,
      },
      loadTemplate: loadProvisioningTemplate,
    },
  );
  return {
    ...services,
    close() {
      dynamoClient.destroy();
      iot.destroy();
      secretsManager.destroy();
    },
  };
}

/** Runs `fn` with the services of the chosen target and closes the clients afterwards. */
export async function withServices<T>(
  options: TargetOptions,
  fn: (services: Services, target: Target) => Promise<T>,
): Promise<T> {
  const target = await resolveTarget(options);
  const services = cliServices(target);
  try {
    return await fn(services, target);
  } finally {
    services.close();
  }
}

/** Runs `fn` with an IoT client for the chosen target and destroys the client afterwards. */
export async function withIotClient<T>(
  options: TargetOptions,
  fn: (client: IoTClient, target: Target) => Promise<T>,
): Promise<T> {
  const target = await resolveTarget(options);
  const client = cliIotClient(target);
  try {
    return await fn(client, target);
  } finally {
    client.destroy();
  }
}
