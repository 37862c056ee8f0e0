import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import { DomainError } from "#core/errors.ts";
import type { Logger } from "#core/logger.ts";
import { METRIC, noMetrics } from "#core/metrics.ts";
import { productKeySchema, serialNumberSchema } from "#core/registry/model.ts";
import { type VendDeps, vendCertificate } from "#core/vending/vend-certificate.ts";
import { MAX_VEND_BODY_BYTES, vendRequestSchema } from "#core/vending/vend-request.ts";
import { type HttpHandler, type HttpMiddleware, httpHandler } from "./http-middleware.ts";
import { errorResponse, jsonResponse, parseJsonBody } from "./http-response.ts";

/**
 * POST /v1/certificates. Parses the body, calls the vending use case, maps the result; a thrown
 * error is answered by the one error mapper (`http-response.ts`) through middy. It never logs the
 * event: it carries signatures and CSRs (and, in server-key mode, the answer carries keys).
 * `outer`: the runtime's middlewares (Lambda: Powertools' context injection and metrics flush).
 */
export function makeVendCertificateHandler(deps: VendDeps, outer: HttpMiddleware[] = []): HttpHandler {
  return httpHandler(
    async (event) => {
      const request = parseJsonBody(event, vendRequestSchema, MAX_VEND_BODY_BYTES);
      const result = await vendCertificate(deps, request);
      return jsonResponse(result.replayed ? 200 : 201, result);
    },
    {
      mapError: (error, event) => {
        const response = errorResponse(error, deps.logger);
        if (response.statusCode < 500) logRejection(deps.logger, event, response.statusCode, error);
        return response;
      },
      metrics: deps.metrics ?? noMetrics,
      outcomeMetric: METRIC.vends,
      outcomeOf: vendOutcome,
      outer,
    },
  );
}

/** CREATED, REPLAYED, the domain error's code, or INTERNAL. */
function vendOutcome(response: APIGatewayProxyResult, error: unknown): string {
  if (error === undefined) return response.statusCode === 200 ? "REPLAYED" : "CREATED";
  return error instanceof DomainError ? error.code : "INTERNAL";
}

/**
 * One line per refused request, so a firmware developer sees why: status, code, reason (the 4xx
 * message the device also gets), and the serial and product key only when they are well-formed
 * (never the signature, nonce, CSR or anything else from the body).
 */
function logRejection(logger: Logger, event: APIGatewayProxyEvent, status: number, error: unknown): void {
  const fields = identifyingFields(event);
  logger.warn("vend rejected", {
    status,
    code: error instanceof DomainError ? error.code : "UNKNOWN",
    ...fields,
    reason: error instanceof Error ? error.message : String(error),
  });
}

function identifyingFields(event: APIGatewayProxyEvent): { serialNumber?: string; productKey?: string } {
  try {
    const raw = event.body ?? "";
    if (raw.length > 64 * 1024) return {};
    const text = event.isBase64Encoded ? Buffer.from(raw, "base64").toString("utf8") : raw;
    const body = JSON.parse(text) as { serialNumber?: unknown; productKey?: unknown };
    const serial = serialNumberSchema.safeParse(body.serialNumber);
    const product = productKeySchema.safeParse(body.productKey);
    return {
      ...(serial.success ? { serialNumber: serial.data } : {}),
      ...(product.success ? { productKey: product.data } : {}),
    };
  } catch {
    return {};
  }
}
