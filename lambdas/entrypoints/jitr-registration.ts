import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { makeJitrHandler } from "#handlers/jitr-registration.ts";
import { lambdaLogger, lambdaMetrics, lambdaServices, withPowertools } from "./lambda-wiring.ts";

const services = lambdaServices();
const logger = lambdaLogger(METRIC_SERVICES.jitr);
const metrics = lambdaMetrics(METRIC_SERVICES.jitr);

/**
 * Lambda entry of just-in-time registration: the target of the topic rule on
 * `$aws/events/certificates/registered/+` (`SELECT * FROM ...`), invoked asynchronously.
 */
export const handler = withPowertools(
  makeJitrHandler({
    registry: services.registry,
    templates: services.templates,
    iot: services.iot,
    config: defaultJitrConfig,
    logger,
    metrics,
  }),
  logger,
  metrics,
);
