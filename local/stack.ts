import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { IoTClient } from "@aws-sdk/client-iot";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { AwsIotProvisioning } from "#adapters/iot-provisioning.ts";
import { defaultSecretNames, makeServices, type Services } from "#adapters/services.ts";
import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import type { Logger } from "#core/logger.ts";
import { defaultVendConfig } from "#core/vending/vend-certificate.ts";
import { makeJitrHandler } from "#handlers/jitr-registration.ts";
import { makeVendCertificateHandler } from "#handlers/vend-certificate.ts";
import {
  DEVICE_POLICY_DOCUMENT,
  DEVICE_POLICY_NAME,
  listTopicRules,
  loadPolicyDocument,
  loadProvisioningTemplate,
  loadTopicRule,
  RULE_TARGETS,
} from "#templates/catalog.ts";
import { apiGatewayListener } from "./api-gateway.ts";
import { startLocalDynamo } from "./dynamodb.ts";
import type { DynamoFaultProxy } from "./dynamodb-faults.ts";
import { createIotEmulator, type IotEmulator } from "./iot/index.ts";
import { localAccountId, localCredentials, localRegion } from "./local-aws.ts";
import { startMqttEndpoint } from "./mqtt/mqtt-endpoint.ts";
import { RuleEngine, type RuleTarget } from "./mqtt/rule-engine.ts";
import { SecretsManagerEmulator } from "./secrets-manager/secrets-manager-emulator.ts";

export type LocalStackOptions = {
  /** Data folder (DynamoDB, IoT state, secrets, root CA); in memory when absent. */
  dataDir?: string;
  host?: string;
  /** Ports; 0 picks a free one. */
  ports?: { api?: number; aws?: number; dynamodb?: number; mqtt?: number };
  tableName?: string;
  logger: Logger;
  /** Route DynamoDB through a proxy that tests can tell to fail calls. */
  dynamoFaultInjection?: boolean;
};

/** Where everything listens; written to `<dataDir>/endpoints.json` for scripts and the CLI. */
export type LocalEndpoints = {
  api: string;
  aws: string;
  dynamodb: string;
  mqtt: string;
  region: string;
  accountId: string;
  tableName: string;
  productSecretPrefix: string;
  registryKeyName: string;
};

export type LocalStack = {
  endpoints: LocalEndpoints;
  services: Services;
  iot: IotEmulator;
  /** The MQTT over TLS endpoint (AWS IoT Core's data plane) and its rule engine. */
  mqtt: { port: number; url: string; rules: RuleEngine };
  dynamoFaults?: DynamoFaultProxy;
  rootCaPem: string;
  close(): Promise<void>;
};

export const defaultPorts = { api: 3000, aws: 4566, dynamodb: 4567, mqtt: 8883 } as const;
const openApiPath = join(dirname(fileURLToPath(import.meta.url)), "..", "openapi.yaml");

/**
 * Starts the whole backend in this process: dynalite, the AWS endpoint (IoT control plane and
 * Secrets Manager emulators), the vending API served by the real Lambda handler, and the MQTT
 * over TLS endpoint whose rule engine runs `templates/rules/*.json` (JITR: the real handler).
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const host = options.host ?? "127.0.0.1";
  const ports = options.ports ?? {};
  const tableName = options.tableName ?? "onramp-registry";
  const dataDir = options.dataDir;
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const closers: (() => Promise<void>)[] = [];
  try {
    const dynamo = await startLocalDynamo({
      ...(dataDir ? { path: join(dataDir, "dynamodb") } : {}),
      port: ports.dynamodb ?? 0,
      host,
      tableName,
      faultInjection: options.dynamoFaultInjection ?? false,
    });
    closers.push(() => dynamo.close());

    const mqttPort = ports.mqtt ?? defaultPorts.mqtt;
    const iot = await createIotEmulator({
      ...(dataDir ? { dataDir: join(dataDir, "iot") } : {}),
      region: localRegion,
      accountId: localAccountId,
      dataEndpoint: `localhost:${mqttPort}`,
      // The shared device policy from templates/ (the CDK stack deploys the same document).
      policies: { [DEVICE_POLICY_NAME]: loadPolicyDocument(DEVICE_POLICY_DOCUMENT) },
    });
    closers.push(() => iot.close());
    const secretsManager = new SecretsManagerEmulator({
      ...(dataDir ? { path: join(dataDir, "secrets.json") } : {}),
      region: localRegion,
      accountId: localAccountId,
    });
    const awsServer = createServer((req, res) => {
      if (SecretsManagerEmulator.accepts(req)) {
        readText(req).then(
          (body) => secretsManager.handle(req, res, body),
          () => res.destroy(),
        );
      } else {
        iot.handler(req, res);
      }
    });
    const awsUrl = await listen(awsServer, ports.aws ?? 0, host);
    closers.push(() => close(awsServer));

    const clientConfig = { endpoint: awsUrl, region: localRegion, credentials: localCredentials };
    const iotClient = new IoTClient({ ...clientConfig, maxAttempts: 3 });
    const secretsClient = new SecretsManagerClient(clientConfig);
    closers.push(async () => {
      iotClient.destroy();
      secretsClient.destroy();
    });
    const services = makeServices(
      { dynamo: dynamo.documentClient, iot: iotClient, secretsManager: secretsClient },
      { tableName, secretNames: defaultSecretNames, loadTemplate: loadProvisioningTemplate },
    );

    const vend = makeVendCertificateHandler({
      ...services,
      config: { ...defaultVendConfig, serverRootCaPem: iot.rootCaPem },
      logger: options.logger,
    });
    const apiServer = createServer(
      apiGatewayListener([
        { method: "POST", path: "/v1/certificates", handler: vend },
        { method: "GET", path: "/openapi.yaml", handler: serveOpenApi },
        {
          method: "GET",
          path: "/health",
          handler: async () => ({ statusCode: 200, body: '{"status":"ok"}' }),
        },
      ]),
    );
    const apiUrl = await listen(apiServer, ports.api ?? 0, host);
    closers.push(() => close(apiServer));

    // The topic rules' targets: the same handlers the CDK stack deploys as Lambda functions.
    const targets = new Map<string, RuleTarget>([
      [
        RULE_TARGETS.jitrRegistration,
        makeJitrHandler({
          registry: services.registry,
          templates: services.templates,
          iot: new AwsIotProvisioning(iotClient),
          config: defaultJitrConfig,
          logger: options.logger,
        }),
      ],
    ]);
    const rules = new RuleEngine({
      rules: listTopicRules().map(loadTopicRule),
      targets,
      logger: options.logger,
    });
    const mqtt = await startMqttEndpoint({
      iot,
      rules,
      host,
      port: mqttPort,
      logger: options.logger,
      region: localRegion,
      accountId: localAccountId,
    });
    closers.push(() => mqtt.close());
    // DescribeEndpoint answers with the port actually bound (port 0 picks a free one).
    iot.setDataEndpoint(`localhost:${mqtt.port}`);

    const endpoints: LocalEndpoints = {
      api: apiUrl,
      aws: awsUrl,
      dynamodb: dynamo.endpoint,
      mqtt: mqtt.url,
      region: localRegion,
      accountId: localAccountId,
      tableName,
      ...defaultSecretNames,
    };
    if (dataDir) writeFileSync(join(dataDir, "endpoints.json"), `${JSON.stringify(endpoints, null, 2)}\n`);
    return {
      endpoints,
      services,
      iot,
      mqtt: { port: mqtt.port, url: mqtt.url, rules },
      ...(dynamo.faults ? { dynamoFaults: dynamo.faults } : {}),
      rootCaPem: iot.rootCaPem,
      close: () => closeAll(closers),
    };
  } catch (error) {
    await closeAll(closers);
    throw error;
  }
}

async function serveOpenApi() {
  return {
    statusCode: 200,
    headers: { "content-type": "application/yaml" },
    body: readFileSync(openApiPath, "utf8"),
  };
}

async function closeAll(closers: (() => Promise<void>)[]): Promise<void> {
  for (const closer of closers.reverse()) await closer().catch(() => undefined);
}

function listen(server: Server, port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const address = server.address() as AddressInfo;
      resolve(`http://${host}:${address.port}`);
    });
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function readText(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
