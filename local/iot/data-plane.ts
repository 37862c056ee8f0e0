import { IotServiceError } from "./errors.ts";
import type { EmulatorContext, OperationRequest, Route } from "./operation.ts";

/**
 * The AWS IoT data plane's Publish (`POST /topics/{topic}?qos=`, what
 * `@aws-sdk/client-iot-data-plane` and `aws iot-data publish` send:
 * https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_Publish.html), served on the
 * local AWS endpoint next to the control plane and handed to the local MQTT endpoint, so operator
 * tools reach devices locally as on AWS. The local router reads bodies as JSON: a payload that is
 * not JSON is refused (400), a limitation of the emulator.
 */
async function publish(context: EmulatorContext, request: OperationRequest) {
  const topic = request.labels.topic ?? "";
  if (topic.length === 0 || /[#+]/.test(topic)) {
    throw new IotServiceError("InvalidRequestException", "The topic is not valid.");
  }
  if (!context.publish) {
    throw new IotServiceError("ServiceUnavailableException", "The MQTT endpoint is not up.", {}, 503);
  }
  await context.publish(topic, request.body ?? {});
  return {};
}

/** The data plane route. */
export const dataPlaneRoutes: Route[] = [
  { operation: "Publish", method: "POST", path: "/topics/{topic}", handler: publish },
];
