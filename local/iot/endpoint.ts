import { invalidRequest } from "./errors.ts";
import type { EmulatorContext, OperationRequest, Route } from "./operation.ts";

const ENDPOINT_TYPES = ["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"];
/** The port of AWS IoT's MQTT over TLS endpoint; clients imply it. */
export const MQTT_TLS_PORT = 8883;

/**
 * DescribeEndpoint's `endpointAddress` for where the local MQTT endpoint listens (`host[:port]`).
 * AWS IoT answers a host name only ("identifier.iot.region.amazonaws.com", port 8883 implied:
 * https://docs.aws.amazon.com/iot/latest/apireference/API_DescribeEndpoint.html), and so does the
 * emulator when the endpoint is on 8883 (`npm start`). On any other port (tests and second stacks
 * bind port 0) it keeps `host:port`: a bare host would send clients (the vending answer's
 * `mqttEndpoint`, which comes from DescribeEndpoint) to the wrong port.
 */
export function endpointAddress(dataEndpoint: string): string {
  const match = /^(.*):(\d+)$/.exec(dataEndpoint);
  if (!match || Number(match[2]) !== MQTT_TLS_PORT) return dataEndpoint;
  return match[1] as string;
}

/** DescribeEndpoint: every endpoint type answers with the local MQTT endpoint (`dataEndpoint`). */
function describeEndpoint(context: EmulatorContext, request: OperationRequest) {
  const type = request.query.get("endpointType") ?? "iot:Data";
  if (!ENDPOINT_TYPES.includes(type)) {
    throw invalidRequest(`Unknown endpointType ${type}.`);
  }
  return { endpointAddress: endpointAddress(context.dataEndpoint) };
}

/** The DescribeEndpoint route. */
export const endpointRoutes: Route[] = [
  { operation: "DescribeEndpoint", method: "GET", path: "/endpoint", handler: describeEndpoint },
];
