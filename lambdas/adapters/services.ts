import type { IoTClient } from "@aws-sdk/client-iot";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { JitrIot } from "#core/jitr/ports.ts";
import type { NonceStore, Registry, SecretStore } from "#core/registry/ports.ts";
import type { ReconcileIot } from "#core/registry/reconcile-devices.ts";
import type { RegistryKeyStore, SealedSecretRows } from "#core/registry/rotate-registry-key.ts";
import type { IotProvisioning, TemplateSource } from "#core/vending/ports.ts";
import { DynamoDbRegistry } from "./dynamodb-registry.ts";
import { DynamoDbSealedSecrets } from "./dynamodb-sealed-secrets.ts";
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
  /** Bound on each AWS IoT call, retries included (ms); see AwsIotProvisioningOptions. */
  iotCallTimeoutMs?: number;
};

export type Services = {
  registry: Registry;
  nonces: NonceStore;
  secrets: SecretStore;
  /** The registry keys and the rows they seal, as `onramp registry rotate-key` changes them. */
  registryKeys: RegistryKeyStore;
  sealedSecrets: SealedSecretRows;
  iot: IotProvisioning & JitrIot & ReconcileIot;
  templates: TemplateSource;
};

export const defaultSecretNames: SecretNames = {
  productSecretPrefix: "onramp/products/",
  registryKeyName: "onramp/registry-key",
};

/** The adapters every runtime uses; only how the clients are built differs (Lambda, local, CLI). */
export function makeServices(clients: AwsClients, settings: ServiceSettings): Services {
  const registry = new DynamoDbRegistry(clients.dynamo, settings.tableName);
  const secrets = new SecretsManagerSecretStore(clients.secretsManager, settings.secretNames);
  return {
    registry,
    nonces: registry,
    secrets,
    registryKeys: secrets,
    sealedSecrets: new DynamoDbSealedSecrets(clients.dynamo, settings.tableName),
    iot: new AwsIotProvisioning(
      clients.iot,
      settings.iotCallTimeoutMs === undefined ? {} : { callTimeoutMs: settings.iotCallTimeoutMs },
    ),
    templates: new CatalogTemplateSource(settings.loadTemplate),
  };
}
