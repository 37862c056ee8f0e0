import { IotDataPublisher } from "#adapters/iot-data-publisher.ts";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { makeBindingReportHandler } from "#handlers/binding-report.ts";
import {
  lambdaBindingStore,
  lambdaLogger,
  lambdaMetrics,
  lambdaServices,
  requireEnv,
  withPowertools,
} from "./lambda-wiring.ts";

const services = lambdaServices();
const logger = lambdaLogger(METRIC_SERVICES.bindingReport);
const metrics = lambdaMetrics(METRIC_SERVICES.bindingReport);
const store = lambdaBindingStore(requireEnv("BINDING_TABLE_NAME"));

/**
 * Lambda entry of the binding topic rules (templates/rules/binding-*.json): token reports and
 * device resets; answers go out through the account's data endpoint (DescribeEndpoint on first use).
 */
export const handler = withPowertools(
  makeBindingReportHandler({
    store,
    registry: services.registry,
    publisher: new IotDataPublisher(() => services.iot.getDataEndpoint()),
    logger,
    metrics,
  }),
  logger,
  metrics,
);
