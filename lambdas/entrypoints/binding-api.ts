import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DynamoDbBindingStore } from "#adapters/dynamodb-bindings.ts";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { makeBindingApiHandler } from "#handlers/binding-api.ts";
import { lambdaLogger, lambdaMetrics, lambdaServices, requireEnv } from "./lambda-wiring.ts";

const logger = lambdaLogger(METRIC_SERVICES.bindingApi);
const metrics = lambdaMetrics(METRIC_SERVICES.bindingApi);
const store = new DynamoDbBindingStore(
  DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } }),
  requireEnv("BINDING_TABLE_NAME"),
);

/** Lambda entry of the phone API (API Gateway REST, Cognito user-pool authorizer, proxy integration), on middy. */
export const handler = makeBindingApiHandler(
  { store, registry: lambdaServices().registry, logger, metrics },
  [injectLambdaContext(logger), logMetrics(metrics.powertools, { captureColdStartMetric: true })],
);
