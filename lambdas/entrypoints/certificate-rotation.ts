import { IotDataPublisher } from "#adapters/iot-data-publisher.ts";
import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import { makeCertificateRotationHandler } from "#handlers/certificate-rotation.ts";
import { lambdaLogger, lambdaServices } from "./lambda-wiring.ts";

const services = lambdaServices();

/**
 * Lambda entry of certificate rotation over MQTT: the target of the topic rule on
 * `things/+/certificates/rotate`. Answers go out through the account's data endpoint (found with
 * DescribeEndpoint on first use).
 */
export const handler = makeCertificateRotationHandler({
  ...services,
  publisher: new IotDataPublisher(() => services.iot.getDataEndpoint()),
  config: { claimTtlMs: defaultJitrConfig.claimTtlMs },
  logger: lambdaLogger("certificate-rotation"),
});
