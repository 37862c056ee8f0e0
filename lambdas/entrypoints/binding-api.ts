import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { makeBindingApiHandler } from "#handlers/binding-api.ts";
import {
  lambdaBindingStore,
  lambdaLogger,
  lambdaMetrics,
  lambdaServices,
  requireEnv,
} from "./lambda-wiring.ts";

const logger = lambdaLogger(METRIC_SERVICES.bindingApi);
const metrics = lambdaMetrics(METRIC_SERVICES.bindingApi);
const store = lambdaBindingStore(requireEnv("BINDING_TABLE_NAME"));

/** Lambda entry of the phone API (API Gateway REST, Cognito user-pool authorizer, proxy integration), on middy. */
export const handler = makeBindingApiHandler(
  { store, registry: lambdaServices().registry, logger, metrics },
  [injectLambdaContext(logger), logMetrics(metrics.powertools, { captureColdStartMetric: true })],
);
