import { IoTDataPlaneClient } from "@aws-sdk/client-iot-data-plane";
import { IotDataPublisher } from "#adapters/iot-data-publisher.ts";
import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import { makeCertificateRotationHandler } from "#handlers/certificate-rotation.ts";
import { lambdaLogger, lambdaServices, requireEnv } from "./lambda-wiring.ts";

const services = lambdaServices();

/**
 * Lambda entry of certificate rotation over MQTT: the target of the topic rule on
 * `things/+/certificates/rotate`. Answers go out through the account's data endpoint
 * (IOT_DATA_ENDPOINT: `https://{DescribeEndpoint iot:Data-ATS}`).
 */
export const handler = makeCertificateRotationHandler({
  ...services,
  publisher: new IotDataPublisher(new IoTDataPlaneClient({ endpoint: requireEnv("IOT_DATA_ENDPOINT") })),
  config: { claimTtlMs: defaultJitrConfig.claimTtlMs },
  logger: lambdaLogger("certificate-rotation"),
});
