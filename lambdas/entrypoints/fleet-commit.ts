import { makeFleetCommitHandler } from "#handlers/fleet-commit.ts";
import { lambdaLogger, lambdaServices } from "./lambda-wiring.ts";

const services = lambdaServices();

/**
 * Lambda entry of fleet provisioning's commit: the target of the topic rule on
 * `$aws/events/presence/connected/+` (templates/rules/fleet-commit.json), invoked asynchronously.
 */
export const handler = makeFleetCommitHandler({
  ...services,
  logger: lambdaLogger("fleet-commit"),
});
