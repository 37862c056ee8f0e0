import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { makeRegisterDeviceHandler } from "#handlers/register-device.ts";
import { lambdaLogger, lambdaMetrics, lambdaServices } from "./lambda-wiring.ts";

const services = lambdaServices();
const logger = lambdaLogger(METRIC_SERVICES.registerDevice);
const metrics = lambdaMetrics(METRIC_SERVICES.registerDevice);

/** Lambda entry of `POST /auth/register/device` (Alibaba-style dynamic registration over HTTPS), on middy. */
export const handler = makeRegisterDeviceHandler({ ...services, logger, metrics }, [
  injectLambdaContext(logger),
  logMetrics(metrics.powertools, { captureColdStartMetric: true }),
]);
