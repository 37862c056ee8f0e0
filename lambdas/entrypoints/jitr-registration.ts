import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import { makeJitrHandler } from "#handlers/jitr-registration.ts";
import { lambdaLogger, lambdaServices } from "./lambda-wiring.ts";

const services = lambdaServices();

/**
 * Lambda entry of just-in-time registration: the target of the topic rule on
 * `$aws/events/certificates/registered/+` (`SELECT * FROM ...`), invoked asynchronously.
 */
export const handler = makeJitrHandler({
  registry: services.registry,
  templates: services.templates,
  iot: services.iot,
  config: defaultJitrConfig,
  logger: lambdaLogger("jitr-registration"),
});
