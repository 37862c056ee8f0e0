import type { IoTClient } from "@aws-sdk/client-iot";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { JitrIot } from "#core/jitr/ports.ts";
import type { NonceStore, Registry, SecretStore } from "#core/registry/ports.ts";
import type { IotProvisioning, TemplateSource } from "#core/vending/ports.ts";
import { DynamoDbRegistry } from "./dynamodb-registry.ts";
import { AwsIotProvisioning } from "./iot-provisioning.ts";
import { type SecretNames, SecretsManagerSecretStore } from "./secrets-manager-store.ts";
import { CatalogTemplateSource } from "./template-source.ts";

export type AwsClients = {
  dynamo: DynamoDBDocumentClient;
  iot: IoTClient;
  secretsManager: SecretsManagerClient;
};

export type ServiceSettings = {
  tableName: string;
  secretNames: SecretNames;
  loadTemplate: (name: string) => string | undefined;
};

export type Services = {
  registry: Registry;
  nonces: NonceStore;
  secrets: SecretStore;
  iot: IotProvisioning & JitrIot;
  templates: TemplateSource;
};

export const defaultSecretNames: SecretNames = {
  productSecretPrefix: "onramp/products/",
  registryKeyName: "onramp/registry-key",
};

/** The adapters every runtime uses; only how the clients are built differs (Lambda, local, CLI). */
export function makeServices(clients: AwsClients, settings: ServiceSettings): Services {
  const registry = new DynamoDbRegistry(clients.dynamo, settings.tableName);
  return {
    registry,
    nonces: registry,
    secrets: new SecretsManagerSecretStore(clients.secretsManager, settings.secretNames),
    iot: new AwsIotProvisioning(clients.iot),
    templates: new CatalogTemplateSource(settings.loadTemplate),
  };
}
