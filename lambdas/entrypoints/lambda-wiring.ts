import { Logger } from "@aws-lambda-powertools/logger";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { makeServices, type Services } from "#adapters/services.ts";
import { loadProvisioningTemplate } from "#templates/catalog.ts";

/**
 * The Lambda runtime's wiring: SDK clients with the default credential chain, resource names
 * read once from the environment (fail fast, no silent defaults).
 */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Missing required setting ${name}`);
  return value;
}

/**
 * The adapters on SDK clients. `maxAttempts` bounds each client's retries (SDK default 3; the IoT
 * client 5): a function with a short deadline (the fleet hook) asks for fewer.
 */
export function lambdaServices(options: { maxAttempts?: number } = {}): Services {
  const attempts = options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts };
  const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient(attempts), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return makeServices(
    {
      dynamo,
      iot: new IoTClient({ maxAttempts: options.maxAttempts ?? 5 }),
      secretsManager: new SecretsManagerClient(attempts),
    },
    {
      tableName: requireEnv("REGISTRY_TABLE_NAME"),
      secretNames: {
        productSecretPrefix: requireEnv("PRODUCT_SECRET_PREFIX"),
        registryKeyName: requireEnv("REGISTRY_KEY_SECRET_NAME"),
      },
      loadTemplate: loadProvisioningTemplate,
    },
  );
}

export function lambdaLogger(serviceName: string): Logger {
  return new Logger({ serviceName });
}
