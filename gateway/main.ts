/**
 * The CoAP gateway's container entrypoint on AWS (gateway/Dockerfile; ECS Fargate behind a UDP
 * Network Load Balancer, lib/constructs/coap-gateway.ts): EnosCoapGateway with the AWS adapters
 * (DynamoDB registry, Secrets Manager, AWS IoT for the first login's thing, the IoT data plane for
 * uplinks), SDK clients on the default credential chain (the task role). Resource names come from
 * the environment, read once; a missing one stops the process before it listens (fail fast).
 *
 * - DTLS/CoAP on UDP `COAP_PORT` (default 5684);
 * - `GET /health` on TCP `HEALTH_PORT` (default 8080): 200 while serving, 503 while draining. NLB
 *   target groups of UDP listeners health-check over TCP/HTTP, never over UDP;
 * - SIGTERM/SIGINT (ECS stops a task with SIGTERM, then SIGKILL after the stop timeout): the
 *   health check turns 503, every session is closed (close_notify) and the process exits.
 */
import { createServer } from "node:http";
import { Logger } from "@aws-lambda-powertools/logger";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { IotDataPublisher } from "#adapters/iot-data-publisher.ts";
import { makeServices } from "#adapters/services.ts";
import { describeError } from "#core/describe-error.ts";
import { EnosCoapGateway } from "#gateway/enos/index.ts";

/** As lambdas/entrypoints/lambda-wiring.ts `requireEnv` (not imported: it pulls the template catalog in). */
function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Missing required setting ${name}`);
  return value;
}

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65_535)
    throw new Error(`Setting ${name} must be a port number, not "${raw}"`);
  return value;
}

const settings = {
  tableName: requireEnv("REGISTRY_TABLE_NAME"),
  productSecretPrefix: requireEnv("PRODUCT_SECRET_PREFIX"),
  registryKeyName: requireEnv("REGISTRY_KEY_SECRET_NAME"),
  coapPort: port("COAP_PORT", 5684),
  healthPort: port("HEALTH_PORT", 8080),
  host: process.env.LISTEN_HOST || "0.0.0.0",
};

const logger = new Logger({ serviceName: "coap-gateway" });
const services = makeServices(
  {
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    iot: new IoTClient({ maxAttempts: 5 }),
    secretsManager: new SecretsManagerClient({}),
  },
  {
    tableName: settings.tableName,
    secretNames: {
      productSecretPrefix: settings.productSecretPrefix,
      registryKeyName: settings.registryKeyName,
    },
    // The gateway never vends: no provisioning template is ever asked for.
    loadTemplate: () => undefined,
  },
);

const gateway = new EnosCoapGateway({
  registry: services.registry,
  secrets: services.secrets,
  iot: services.iot,
  // Uplinks go out through the account's data endpoint, found with DescribeEndpoint on first use.
  publisher: new IotDataPublisher(() => services.iot.getDataEndpoint()),
  logger,
});

let draining = false;
const health = createServer((request, response) => {
  if (request.method !== "GET" || request.url !== "/health") {
    response.writeHead(404).end();
    return;
  }
  response
    .writeHead(draining ? 503 : 200, { "content-type": "application/json" })
    .end(JSON.stringify({ status: draining ? "draining" : "ok", ...gateway.stats() }));
});

async function main(): Promise<void> {
  const coap = await gateway.listen(settings.coapPort, settings.host);
  await new Promise<void>((resolve, reject) => {
    health.once("error", reject);
    health.listen(settings.healthPort, settings.host, () => resolve());
  });
  logger.info("coap gateway listening", {
    coap: `udp ${coap.address}:${coap.port}`,
    health: `tcp ${settings.host}:${settings.healthPort} /health`,
  });
}

async function shutdown(signal: string): Promise<void> {
  if (draining) return;
  draining = true;
  logger.info("coap gateway stopping", { signal });
  // Whatever happens, leave before ECS's SIGKILL (stopTimeout, 30 s by default).
  setTimeout(() => process.exit(1), 20_000).unref();
  try {
    await gateway.close();
    await new Promise<void>((resolve) => health.close(() => resolve()));
    process.exit(0);
  } catch (error) {
    logger.error("coap gateway: unclean stop", { error: describeError(error) });
    process.exit(1);
  }
}

process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

main().catch((error: unknown) => {
  logger.error("coap gateway failed to start", { error: describeError(error) });
  process.exit(1);
});
