import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { Context } from "aws-lambda";
import { BoundedRetryStrategy } from "#adapters/bounded-retry.ts";
import { DynamoDbBindingStore } from "#adapters/dynamodb-bindings.ts";
import { DynamoDbProvisioningBudget } from "#adapters/dynamodb-provisioning-budget.ts";
import { PowertoolsMetricsPort } from "#adapters/powertools-metrics.ts";
import { makeServices, type Services } from "#adapters/services.ts";
import type { ProvisioningBudget } from "#core/admission/ports.ts";
import { METRICS_NAMESPACE } from "#core/metrics.ts";
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
 * The retries of a synchronous provisioning path (vend): 3 attempts per AWS IoT call, full-jitter
 * backoff capped at 400 ms (≤ 0.6 s of sleeps per call), each call aborted after 1.2 s. With at
 * most 8 IoT calls forward and 8 in an undo, that is ≤ 19.2 s against the 28 s timeout
 * (ARCHITECTURE.md "Retries and timeouts").
 */
export const SYNCHRONOUS_IOT_RETRIES = { maxAttempts: 3, backoffCapMs: 400, callTimeoutMs: 1_200 } as const;

/**
 * The adapters on SDK clients. `maxAttempts` bounds each client's retries (SDK default 3; the IoT
 * client 5): a function with a short deadline (the fleet hook) asks for fewer. `iot`: bounded
 * retries and a per-call bound for the IoT client (SYNCHRONOUS_IOT_RETRIES on the vend path).
 */
export function lambdaServices(
  options: {
    maxAttempts?: number;
    iot?: { maxAttempts: number; backoffCapMs: number; callTimeoutMs: number };
  } = {},
): Services {
  const attempts = options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts };
  const dynamo = options.maxAttempts === undefined ? lambdaDocumentClient() : documentClient(attempts);
  return makeServices(
    {
      dynamo,
      iot: options.iot
        ? new IoTClient({
            maxAttempts: options.iot.maxAttempts,
            retryStrategy: new BoundedRetryStrategy(options.iot.maxAttempts, options.iot.backoffCapMs),
          })
        : new IoTClient({ maxAttempts: options.maxAttempts ?? 5 }),
      secretsManager: new SecretsManagerClient(attempts),
    },
    {
      tableName: requireEnv("REGISTRY_TABLE_NAME"),
      secretNames: {
        productSecretPrefix: requireEnv("PRODUCT_SECRET_PREFIX"),
        registryKeyName: requireEnv("REGISTRY_KEY_SECRET_NAME"),
      },
      loadTemplate: loadProvisioningTemplate,
      ...(options.iot ? { iotCallTimeoutMs: options.iot.callTimeoutMs } : {}),
    },
  );
}

function documentClient(config: { maxAttempts?: number }): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient(config), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

let sharedDocumentClient: DynamoDBDocumentClient | undefined;

/**
 * The function's one DynamoDB document client with the SDK's default retries (one connection pool
 * per instance): the registry adapters of {@link lambdaServices}, the provisioning budget, the JITR
 * ledger and the binding store all use it.
 */
export function lambdaDocumentClient(): DynamoDBDocumentClient {
  sharedDocumentClient ??= documentClient({});
  return sharedDocumentClient;
}

/** The device–user binding store on the binding table (the binding entries pass BINDING_TABLE_NAME). */
export function lambdaBindingStore(tableName: string): DynamoDbBindingStore {
  return new DynamoDbBindingStore(lambdaDocumentClient(), tableName);
}

/**
 * The account's provisioning budget in the registry table (admission control), sized by the CDK
 * stack from the quota profile: PROVISIONING_RATE (per second) and PROVISIONING_SHARDS.
 */
function lambdaProvisioningBudget(): DynamoDbProvisioningBudget {
  const rate = Number(requireEnv("PROVISIONING_RATE"));
  const shards = Number(requireEnv("PROVISIONING_SHARDS"));
  if (!(rate > 0) || !Number.isInteger(shards) || shards < 1) {
    throw new Error("PROVISIONING_RATE must be > 0 and PROVISIONING_SHARDS a whole number ≥ 1");
  }
  return new DynamoDbProvisioningBudget(lambdaDocumentClient(), requireEnv("REGISTRY_TABLE_NAME"), {
    ratePerSecond: rate,
    shards,
  });
}

/**
 * The provisioning budget for a module-level handler: the settings must be present at load (fail
 * fast), and are read and checked at the first take (a bad value fails that invocation, with the
 * setting's name, not the module load).
 */
export function lazyProvisioningBudget(): ProvisioningBudget {
  requireEnv("PROVISIONING_RATE");
  requireEnv("PROVISIONING_SHARDS");
  let budget: ProvisioningBudget | undefined;
  const get = () => {
    budget ??= lambdaProvisioningBudget();
    return budget;
  };
  return {
    get ratePerSecond() {
      return get().ratePerSecond;
    },
    take: (now) => get().take(now),
  };
}

export function lambdaLogger(serviceName: string): Logger {
  return new Logger({ serviceName });
}

/** The metrics port on Powertools Metrics (EMF), namespace `IotOnramp`, dimension `service`. */
export function lambdaMetrics(serviceName: string): PowertoolsMetricsPort {
  return new PowertoolsMetricsPort(new Metrics({ namespace: METRICS_NAMESPACE, serviceName }));
}

/**
 * The Powertools wiring of a function without middy (the event-driven ones; see ARCHITECTURE.md,
 * "middy"): the Lambda context on every log line, a ColdStart metric, and the buffered metrics
 * flushed after each invocation, whether it resolved or threw. What `injectLambdaContext` and
 * `logMetrics` do for the HTTP functions.
 */
export function withPowertools<E, R>(
  handler: (event: E) => Promise<R>,
  logger: Logger,
  metrics: PowertoolsMetricsPort,
): (event: E, context: Context) => Promise<R> {
  let coldStart = true;
  return async (event, context) => {
    logger.addContext(context);
    if (coldStart) {
      coldStart = false;
      metrics.powertools.captureColdStartMetric(context.functionName);
    }
    try {
      return await handler(event);
    } finally {
      metrics.powertools.publishStoredMetrics();
    }
  };
}
