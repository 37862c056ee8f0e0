import { defaultFleetHookConfig } from "#core/fleet/authorize-fleet-provisioning.ts";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { makePreProvisioningHookHandler } from "#handlers/pre-provisioning-hook.ts";
import { lambdaLogger, lambdaMetrics, lambdaServices, withPowertools } from "./lambda-wiring.ts";

/**
 * Lambda entry of the fleet provisioning pre-provisioning hook (the `fleet-claim-device`
 * template's `preProvisioningHook`). It claims the serial in the registry (phase one of the
 * two-phase record), settles a stale claim through AWS IoT, and checks a re-provisioning's proof
 * with the device's secret. Two attempts per call at most: the decision has a 3 s deadline.
 */
const services = lambdaServices({ maxAttempts: 2 });
const logger = lambdaLogger(METRIC_SERVICES.fleetHook);
const metrics = lambdaMetrics(METRIC_SERVICES.fleetHook);

export const handler = withPowertools(
  makePreProvisioningHookHandler({ ...services, config: defaultFleetHookConfig, logger, metrics }),
  logger,
  metrics,
);
