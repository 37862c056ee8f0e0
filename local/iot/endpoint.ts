import { invalidRequest } from "./errors.ts";
import type { EmulatorContext, OperationRequest, Route } from "./operation.ts";

const ENDPOINT_TYPES = ["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"];

/** DescribeEndpoint: every endpoint type answers with the local MQTT endpoint (`dataEndpoint`). */
function describeEndpoint(context: EmulatorContext, request: OperationRequest) {
  const type = request.query.get("endpointType") ?? "iot:Data";
  if (!ENDPOINT_TYPES.includes(type)) {
    throw invalidRequest(`Unknown endpointType ${type}.`);
  }
  return { endpointAddress: context.dataEndpoint };
}

/** The DescribeEndpoint route. */
export const endpointRoutes: Route[] = [
  { operation: "DescribeEndpoint", method: "GET", path: "/endpoint", handler: describeEndpoint },
];
