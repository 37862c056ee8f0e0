import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { IoTClient } from "@aws-sdk/client-iot";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { BoundedRetryStrategy } from "#adapters/bounded-retry.ts";
import { DynamoDbProvisioningBudget } from "#adapters/dynamodb-provisioning-budget.ts";
import { AwsIotProvisioning } from "#adapters/iot-provisioning.ts";
import { defaultSecretNames, makeServices, type Services } from "#adapters/services.ts";
import { AWS_DEFAULT_IOT_TPS, budgetShards, provisioningRate } from "#core/admission/quota-profile.ts";
import type { BindingConfig } from "#core/binding/model.ts";
import { defaultFleetHookConfig } from "#core/fleet/authorize-fleet-provisioning.ts";
import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import type { Logger } from "#core/logger.ts";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { activateDevice } from "#core/registration/activate-device.ts";
import { registerDevice } from "#core/registration/register-device.ts";
import { defaultVendConfig } from "#core/vending/vend-certificate.ts";
import { ALIYUN_REGISTER_PATH } from "#credentials/aliyun-register-form.ts";
import { EnosCoapGateway } from "#gateway/enos/index.ts";
import { makeCertificateRotationHandler } from "#handlers/certificate-rotation.ts";
import { makeCustomAuthorizerHandler } from "#handlers/custom-authorizer.ts";
import { makeFleetCommitHandler } from "#handlers/fleet-commit.ts";
import { makePreProvisioningHookHandler } from "#handlers/pre-provisioning-hook.ts";
import { makeRegisterDeviceHandler } from "#handlers/register-device.ts";
import { makeVendCertificateHandler } from "#handlers/vend-certificate.ts";
import {
  AUTHORIZER_POLICY_DOCUMENTS,
  DEVICE_POLICY_DOCUMENT,
  DEVICE_POLICY_NAME,
  FLEET_CLAIM_POLICY_DOCUMENT,
  FLEET_CLAIM_POLICY_NAME,
  listTopicRules,
  loadPolicyDocument,
  loadProvisioningTemplate,
  loadTopicRule,
  RULE_TARGETS,
} from "#templates/catalog.ts";
import { apiGatewayListener } from "./api-gateway.ts";
import {
  awsCliEnvironment,
  type LocalAwsCredentials,
  loadOrCreateLocalAwsCredentials,
} from "./aws-auth/local-aws-credentials.ts";
import { startLocalAwsEndpoint } from "./aws-endpoint.ts";
import { DEFAULT_BINDING_TABLE, ensureBindingTable, localBinding } from "./binding-wiring.ts";
import { startLocalDynamo } from "./dynamodb.ts";
import type { DynamoFaultProxy } from "./dynamodb-faults.ts";
import { startExpiredItemSweeper } from "./expired-item-sweeper.ts";
import { createIotEmulator, type IotEmulator } from "./iot/index.ts";
import { type AwsQuotaProfile, connectRateLimiter } from "./iot/quotas.ts";
import { connectRegistrationTasks } from "./iot/registration-tasks.ts";
import type { LocalJwtIssuer } from "./jwt-issuer.ts";
import { localAccountId, localRegion } from "./local-aws.ts";
import { LOCAL_METRICS_PATH, LocalMetrics } from "./local-metrics.ts";
import { LOCAL_PRE_PROVISIONING_HOOK_FUNCTION } from "./mqtt/fleet-provisioning.ts";
import { seedFleetProvisioningTemplate } from "./mqtt/fleet-seed.ts";
import { localJitrQueue } from "./mqtt/jitr-queue.ts";
import { startMqttEndpoint } from "./mqtt/mqtt-endpoint.ts";
import { RuleEngine, type RuleTarget } from "./mqtt/rule-engine.ts";
import { preparePrivateDataFolder } from "./private-data-folder.ts";
import { LOCAL_BULK_BUCKET } from "./s3/bulk-defaults.ts";
import { S3Emulator } from "./s3/s3-emulator.ts";
import { SecretsManagerEmulator } from "./secrets-manager/secrets-manager-emulator.ts";

export type LocalStackOptions = {
  /** Data folder (DynamoDB, IoT state, secrets, root CA); in memory when absent. */
  dataDir?: string;
  host?: string;
  /** Ports; 0 picks a free one. */
  ports?: { api?: number; aws?: number; dynamodb?: number; mqtt?: number; coap?: number };
  tableName?: string;
  logger: Logger;
  /** Route DynamoDB through a proxy that tests can tell to fail calls. */
  dynamoFaultInjection?: boolean;
  /** How often expired items (nonces) are deleted from the table; default 60 s. */
  sweepIntervalMs?: number;
  /** How long a provisioning claim blocks other flows (vending, JITR); default 2 min. */
  claimTtlMs?: number;
  /** `default`: AWS IoT's default TPS per operation and 1 CONNECT/s per client id (quotas.ts); default `off`. */
  awsQuotas?: AwsQuotaProfile;
  /** Device–user binding: its clock (token expiry, failed-bind windows, JWT expiry) and limits. */
  binding?: { clock?: () => number; config?: Partial<BindingConfig> };
};

/**
 * Where everything listens and the key pair the AWS endpoint accepts; written to
 * `<dataDir>/endpoints.json` (0600) for scripts and the CLI.
 */
export type LocalEndpoints = {
  accessKeyId: string;
  secretAccessKey: string;
  api: string;
  aws: string;
  dynamodb: string;
  mqtt: string;
  /** CoAP over DTLS-PSK for NB-IoT devices (EnOS, seed 000): `coaps://host:port`. */
  coap: string;
  region: string;
  accountId: string;
  tableName: string;
  /** The device–user binding table (env BINDING_TABLE_NAME on Lambda). */
  bindingTableName: string;
  /** The local JWT issuer (`iss` of the phone API's ID tokens); JWKS at `{jwtIssuer}/.well-known/jwks.json`. */
  jwtIssuer: string;
  productSecretPrefix: string;
  registryKeyName: string;
};

export type LocalStack = {
  endpoints: LocalEndpoints;
  services: Services;
  iot: IotEmulator;
  /** The MQTT over TLS endpoint (AWS IoT Core's data plane) and its rule engine. */
  mqtt: { port: number; url: string; rules: RuleEngine };
  /** The CoAP gateway (gateway/enos) on UDP. */
  coap: { port: number; gateway: EnosCoapGateway };
  dynamoFaults?: DynamoFaultProxy;
  rootCaPem: string;
  /** The key pair the AWS endpoint accepts (SigV4): give it to SDK clients of `endpoints.aws`. */
  credentials: LocalAwsCredentials;
  /** The functions' counters (the Lambda functions' CloudWatch metrics), also at GET /_onramp/metrics. */
  metrics: LocalMetrics;
  /** Device–user binding: the store and the local JWT issuer of the phone API's users. */
  binding: { store: ReturnType<typeof localBinding>["store"]; issuer: LocalJwtIssuer };
  close(): Promise<void>;
};

export const defaultPorts = { api: 3000, aws: 4566, dynamodb: 4567, mqtt: 8883, coap: 5684 } as const;
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
  if (dataDir) preparePrivateDataFolder(dataDir); // 0700, files 0600 (also those of older versions)
  const credentials = loadOrCreateLocalAwsCredentials(dataDir);
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
      quotas: options.awsQuotas ?? "off",
      // The shared device policy from templates/ (the CDK stack deploys the same document).
      policies: {
        [DEVICE_POLICY_NAME]: loadPolicyDocument(DEVICE_POLICY_DOCUMENT),
        [FLEET_CLAIM_POLICY_NAME]: loadPolicyDocument(FLEET_CLAIM_POLICY_DOCUMENT),
      },
    });
    closers.push(() => iot.close());
    await seedFleetProvisioningTemplate(iot); // fleet-claim-device, hook -> the handler below
    const secretsManager = new SecretsManagerEmulator({
      ...(dataDir ? { path: join(dataDir, "secrets.json") } : {}),
      region: localRegion,
      accountId: localAccountId,
    });
    // S3 on the same endpoint (bulk provisioning's input files and reports), and the emulator's
    // bulk registration tasks reading from it.
    const s3 = new S3Emulator({
      ...(dataDir ? { dataDir: join(dataDir, "s3") } : {}),
      region: localRegion,
      credentials,
      logger: options.logger,
    });
    s3.createBucket(LOCAL_BULK_BUCKET);
    connectRegistrationTasks(iot, { s3, ...(dataDir ? { dataDir: join(dataDir, "iot") } : {}) });
    const aws = await startLocalAwsEndpoint({
      iot,
      secretsManager,
      s3,
      credentials,
      host,
      port: ports.aws ?? 0,
    });
    const awsUrl = aws.url;
    s3.publicUrl = awsUrl;
    closers.push(() => aws.close());

    const clientConfig = { endpoint: awsUrl, region: localRegion, credentials };
    // The vend path's bounded retries (lambda-wiring.ts SYNCHRONOUS_IOT_RETRIES), without the
    // per-call bound: this machine's load, not AWS, sets the local latencies.
    const iotClient = new IoTClient({
      ...clientConfig,
      maxAttempts: 3,
      retryStrategy: new BoundedRetryStrategy(3, 400),
    });
    const secretsClient = new SecretsManagerClient(clientConfig);
    closers.push(async () => {
      iotClient.destroy();
      secretsClient.destroy();
    });
    const services = makeServices(
      { dynamo: dynamo.documentClient, iot: iotClient, secretsManager: secretsClient },
      { tableName, secretNames: defaultSecretNames, loadTemplate: loadProvisioningTemplate },
    );

    const metrics = new LocalMetrics();
    // Rule targets that answer devices publish through the MQTT endpoint, which starts after them.
    let endpoint: { publish(topic: string, payload: unknown): Promise<void> } | undefined;
    const mqttPublish = (topic: string, payload: unknown) =>
      endpoint ? endpoint.publish(topic, payload) : Promise.reject(new Error("the MQTT endpoint is not up"));
    await ensureBindingTable(dynamo.client, DEFAULT_BINDING_TABLE);
    const binding = localBinding({
      documentClient: dynamo.documentClient,
      tableName: DEFAULT_BINDING_TABLE,
      registry: services.registry,
      logger: options.logger,
      apiMetrics: metrics.forService(METRIC_SERVICES.bindingApi),
      reportMetrics: metrics.forService(METRIC_SERVICES.bindingReport),
      // The data plane's Publish is the local MQTT endpoint's (started below; used only later).
      publisher: { publish: (topic, payload) => mqttPublish(topic, payload) },
      ...(options.binding?.clock ? { clock: options.binding.clock } : {}),
      ...(options.binding?.config ? { config: options.binding.config } : {}),
    });
    // Admission control with `--aws-quotas default`: the budget AWS's default quotas allow, in
    // dynalite like the registry (the Lambda's: lambda-wiring.ts lambdaProvisioningBudget).
    const budgetRate = provisioningRate({ ...AWS_DEFAULT_IOT_TPS });
    const budget =
      options.awsQuotas === "default"
        ? new DynamoDbProvisioningBudget(dynamo.documentClient, tableName, {
            ratePerSecond: budgetRate,
            shards: budgetShards(budgetRate),
          })
        : undefined;
    const vend = makeVendCertificateHandler({
      ...services,
      ...(budget ? { budget } : {}),
      metrics: metrics.forService(METRIC_SERVICES.vend),
      config: {
        ...defaultVendConfig,
        serverRootCaPem: iot.rootCaPem,
        ...(options.claimTtlMs ? { claimTtlMs: options.claimTtlMs } : {}),
      },
      logger: options.logger,
    });
    const apiServer = createServer(
      apiGatewayListener(
        [
          { method: "POST", path: "/v1/certificates", handler: vend },
          {
            method: "POST",
            path: ALIYUN_REGISTER_PATH,
            handler: makeRegisterDeviceHandler({
              ...services,
              logger: options.logger,
              metrics: metrics.forService(METRIC_SERVICES.registerDevice),
            }),
          },
          {
            method: "GET",
            path: LOCAL_METRICS_PATH,
            handler: async () => ({
              statusCode: 200,
              headers: { "content-type": "application/json", "cache-control": "no-store" },
              body: JSON.stringify(metrics.snapshot()),
            }),
          },
          { method: "GET", path: "/openapi.yaml", handler: serveOpenApi },
          ...binding.routes,
          {
            method: "GET",
            path: "/health",
            handler: async () => ({ statusCode: 200, body: '{"status":"ok"}' }),
          },
        ],
        { verifyJwt: binding.verifyJwt },
      ),
    );
    const apiUrl = await listen(apiServer, ports.api ?? 0, host);
    closers.push(() => close(apiServer));
    const jwtIssuer = await binding.startIssuer(apiUrl, dataDir);

    // The topic rules' targets: the same handlers the CDK stack deploys as Lambda functions.
    const targets = new Map<string, RuleTarget>([
      [
        RULE_TARGETS.fleetCommit,
        makeFleetCommitHandler({
          ...services,
          logger: options.logger,
          metrics: metrics.forService(METRIC_SERVICES.fleetCommit),
        }),
      ],
      [
        RULE_TARGETS.certificateRotation,
        makeCertificateRotationHandler({
          ...services,
          // The data plane's Publish is the local MQTT endpoint's (started below; used only later).
          publisher: { publish: (topic, payload) => mqttPublish(topic, payload) },
          config: { claimTtlMs: options.claimTtlMs ?? defaultJitrConfig.claimTtlMs },
          logger: options.logger,
          metrics: metrics.forService(METRIC_SERVICES.rotation),
        }),
      ],
      [RULE_TARGETS.bindingReport, binding.report],
    ]);
    // JITR goes through a queue, as deployed (rule → SQS → Lambda with a concurrency cap).
    const jitrQueue = localJitrQueue({
      jitr: {
        registry: services.registry,
        templates: services.templates,
        iot: new AwsIotProvisioning(iotClient),
        config: options.claimTtlMs ? { claimTtlMs: options.claimTtlMs } : defaultJitrConfig,
        logger: options.logger,
        metrics: metrics.forService(METRIC_SERVICES.jitr),
      },
      documentClient: dynamo.documentClient,
      tableName,
      awsQuotas: options.awsQuotas ?? "off",
      ...(budget ? { budget } : {}),
      queue: () => rules.queues.get(RULE_TARGETS.jitrRegistration),
    });
    const rules: RuleEngine = new RuleEngine({
      rules: listTopicRules().map(loadTopicRule),
      targets,
      queued: new Map([[RULE_TARGETS.jitrRegistration, jitrQueue]]),
      logger: options.logger,
    });
    closers.push(async () => rules.close());
    // Rules created through the AWS IoT API (CreateTopicRule) run too, from the moment they exist.
    const unwatchRules = iot.state.watchTopicRules((created) => rules.setApiRules(created));
    closers.push(async () => void unwatchRules());
    const mqtt = await startMqttEndpoint({
      iot,
      rules,
      host,
      port: mqttPort,
      logger: options.logger,
      region: localRegion,
      accountId: localAccountId,
      ...withConnectRate(options.awsQuotas),
      // Devices born with a secret: the real custom authorizer handler, in-process, and the
      // registration / activation answers AWS IoT cannot push (see local/mqtt/secret-login.ts).
      secretLogin: {
        authorize: makeCustomAuthorizerHandler({
          ...services,
          policies: {
            device: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.device),
            activation: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.activation),
          },
          logger: options.logger,
          metrics: metrics.forService(METRIC_SERVICES.authorizer),
        }),
        register: (request) => registerDevice({ ...services, logger: options.logger }, request),
        activate: (request) => activateDevice({ ...services, logger: options.logger }, request),
      },
      // Fleet provisioning's MQTT API; the template's hook is the real handler, in-process.
      fleet: {
        hooks: new Map([
          [
            LOCAL_PRE_PROVISIONING_HOOK_FUNCTION,
            makePreProvisioningHookHandler({
              ...services,
              config: {
                ...defaultFleetHookConfig,
                ...(options.claimTtlMs ? { claimTtlMs: options.claimTtlMs } : {}),
              },
              logger: options.logger,
              metrics: metrics.forService(METRIC_SERVICES.fleetHook),
            }),
          ],
        ]),
      },
    });
    endpoint = mqtt;
    iot.setPublisher((topic, payload) => mqtt.publish(topic, payload));
    closers.push(() => mqtt.close());
    // DescribeEndpoint answers with the port actually bound (port 0 picks a free one).
    iot.setDataEndpoint(`localhost:${mqtt.port}`);
    // NB-IoT devices: CoAP over DTLS-PSK (gateway/enos), published into the MQTT endpoint.
    const coap = new EnosCoapGateway({ ...services, publisher: mqtt, logger: options.logger });
    const coapPort = (await coap.listen(ports.coap ?? 0, host)).port;
    closers.push(() => coap.close());

    // DynamoDB's TTL, for both tables (nonces and claims; binding tokens and failed-bind windows).
    for (const sweptTable of [tableName, DEFAULT_BINDING_TABLE]) {
      const sweeper = startExpiredItemSweeper({
        client: dynamo.documentClient,
        tableName: sweptTable,
        ...(options.sweepIntervalMs ? { intervalMs: options.sweepIntervalMs } : {}),
        logger: options.logger,
      });
      closers.push(() => sweeper.stop());
    }

    const endpoints: LocalEndpoints = {
      ...credentials,
      api: apiUrl,
      aws: awsUrl,
      dynamodb: dynamo.endpoint,
      mqtt: mqtt.url,
      coap: `coaps://${host.includes(":") ? `[${host}]` : host}:${coapPort}`,
      region: localRegion,
      accountId: localAccountId,
      tableName,
      bindingTableName: DEFAULT_BINDING_TABLE,
      jwtIssuer: jwtIssuer.issuer,
      ...defaultSecretNames,
    };
    if (dataDir) {
      writePrivateFile(join(dataDir, "endpoints.json"), `${JSON.stringify(endpoints, null, 2)}\n`);
      writePrivateFile(join(dataDir, "aws.env"), `${awsCliEnvironment(credentials, localRegion)}\n`);
    }
    return {
      endpoints,
      services,
      iot,
      mqtt: { port: mqtt.port, url: mqtt.url, rules },
      coap: { port: coapPort, gateway: coap },
      ...(dynamo.faults ? { dynamoFaults: dynamo.faults } : {}),
      rootCaPem: iot.rootCaPem,
      credentials,
      metrics,
      binding: { store: binding.store, issuer: jwtIssuer },
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

/** Replaces a file atomically, readable by the owner only. */
function writePrivateFile(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, path);
}

/** The MQTT endpoint's CONNECT limiter for a quota profile (none when off). */
function withConnectRate(profile: AwsQuotaProfile | undefined) {
  const connectRate = connectRateLimiter(profile ?? "off");
  return connectRate ? { connectRate } : {};
}
