import { IotDataPublisher } from "#adapters/iot-data-publisher.ts";
import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { makeCertificateRotationHandler } from "#handlers/certificate-rotation.ts";
import { lambdaLogger, lambdaMetrics, lambdaServices, withPowertools } from "./lambda-wiring.ts";

const services = lambdaServices();
const logger = lambdaLogger(METRIC_SERVICES.rotation);
const metrics = lambdaMetrics(METRIC_SERVICES.rotation);

/**
 * Lambda entry of certificate rotation over MQTT: the target of the topic rule on
 * `things/+/certificates/rotate`. Answers go out through the account's data endpoint (found with
 * DescribeEndpoint on first use).
 */
export const handler = withPowertools(
  makeCertificateRotationHandler({
    ...services,
    publisher: new IotDataPublisher(() => services.iot.getDataEndpoint()),
    config: { claimTtlMs: defaultJitrConfig.claimTtlMs },
    logger,
    metrics,
  }),
  logger,
  metrics,
);
