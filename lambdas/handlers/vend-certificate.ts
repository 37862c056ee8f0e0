import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import { type VendDeps, vendCertificate } from "#core/vending/vend-certificate.ts";
import { MAX_VEND_BODY_BYTES, vendRequestSchema } from "#core/vending/vend-request.ts";
import { errorResponse, jsonResponse, parseJsonBody } from "./http-response.ts";

/**
 * POST /v1/certificates. Parses the body, calls the vending use case, maps the result. It never
 * logs the event: it carries signatures and CSRs (and, in server-key mode, the answer carries keys).
 */
export function makeVendCertificateHandler(deps: VendDeps) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    try {
      const request = parseJsonBody(event, vendRequestSchema, MAX_VEND_BODY_BYTES);
      const result = await vendCertificate(deps, request);
      return jsonResponse(result.replayed ? 200 : 201, result);
    } catch (error) {
      return errorResponse(error, deps.logger);
    }
  };
}
