import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DynamoDbRegistry } from "#adapters/dynamodb-registry.ts";
import { defaultFleetHookConfig } from "#core/fleet/authorize-fleet-provisioning.ts";
import { makePreProvisioningHookHandler } from "#handlers/pre-provisioning-hook.ts";
import { lambdaLogger, requireEnv } from "./lambda-wiring.ts";

/**
 * Lambda entry of the fleet provisioning pre-provisioning hook (the `fleet-claim-device`
 * template's `preProvisioningHook`). It reads the registry only, so it builds just the DynamoDB
 * adapter instead of `lambdaServices()`: no IoT or Secrets Manager client in the bundle, and only
 * REGISTRY_TABLE_NAME is required. Two attempts at most: the decision has a 3 s deadline.
 */
const registry = new DynamoDbRegistry(
  DynamoDBDocumentClient.from(new DynamoDBClient({ maxAttempts: 2 })),
  requireEnv("REGISTRY_TABLE_NAME"),
);

export const handler = makePreProvisioningHookHandler({
  registry,
  config: defaultFleetHookConfig,
  logger: lambdaLogger("pre-provisioning-hook"),
});
