import { METRIC_SERVICES } from "#core/metrics.ts";
import { makeFleetCommitHandler } from "#handlers/fleet-commit.ts";
import { lambdaLogger, lambdaMetrics, lambdaServices, withPowertools } from "./lambda-wiring.ts";

const services = lambdaServices();
const logger = lambdaLogger(METRIC_SERVICES.fleetCommit);
const metrics = lambdaMetrics(METRIC_SERVICES.fleetCommit);

/**
 * Lambda entry of fleet provisioning's commit: the target of the topic rule on
 * `$aws/events/presence/connected/+` (templates/rules/fleet-commit.json), invoked asynchronously.
 */
export const handler = withPowertools(
  makeFleetCommitHandler({ ...services, logger, metrics }),
  logger,
  metrics,
);
