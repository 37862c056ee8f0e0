import { METRIC_SERVICES } from "#core/metrics.ts";
import { makeCustomAuthorizerHandler } from "#handlers/custom-authorizer.ts";
import { AUTHORIZER_POLICY_DOCUMENTS, loadPolicyDocument } from "#templates/catalog.ts";
import { lambdaLogger, lambdaMetrics, lambdaServices, withPowertools } from "./lambda-wiring.ts";

/**
 * Lambda entry of the AWS IoT custom authorizer (MQTT username/password) for secret-born devices.
 * Two attempts per call at most: AWS IoT gives the authorizer 5 s.
 */
const services = lambdaServices({ maxAttempts: 2 });
const logger = lambdaLogger(METRIC_SERVICES.authorizer);
const metrics = lambdaMetrics(METRIC_SERVICES.authorizer);

export const handler = withPowertools(
  makeCustomAuthorizerHandler({
    ...services,
    policies: {
      device: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.device),
      activation: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.activation),
    },
    logger,
    metrics,
  }),
  logger,
  metrics,
);
