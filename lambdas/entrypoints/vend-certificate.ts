import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { AMAZON_ROOT_CA_1 } from "#adapters/amazon-root-ca.ts";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { defaultVendConfig } from "#core/vending/vend-certificate.ts";
import { makeVendCertificateHandler } from "#handlers/vend-certificate.ts";
import {
  lambdaLogger,
  lambdaMetrics,
  lambdaServices,
  lazyProvisioningBudget,
  SYNCHRONOUS_IOT_RETRIES,
} from "./lambda-wiring.ts";

const logger = lambdaLogger(METRIC_SERVICES.vend);
const metrics = lambdaMetrics(METRIC_SERVICES.vend);

/** Lambda entry of POST /v1/certificates (API Gateway REST, proxy integration), on middy. */
export const handler = makeVendCertificateHandler(
  {
    ...lambdaServices({ iot: SYNCHRONOUS_IOT_RETRIES }),
    budget: lazyProvisioningBudget(),
    // claimTtlMs follows VEND_TIMEOUT_SECONDS, the timeout lib/constructs/vend-function.ts deploys.
    config: { ...defaultVendConfig, serverRootCaPem: AMAZON_ROOT_CA_1 },
    logger,
    metrics,
  },
  [injectLambdaContext(logger), logMetrics(metrics.powertools, { captureColdStartMetric: true })],
);
