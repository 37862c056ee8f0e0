import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { DomainError, type ErrorKind, PayloadTooLargeError, ValidationError } from "#core/errors.ts";
import type { Logger } from "#core/logger.ts";

/** The one place where domain errors become HTTP status codes. */
const statusByKind: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  "not-found": 404,
  conflict: 409,
  "too-large": 413,
  throttled: 429,
  unavailable: 503,
};

// zod/mini ships without messages; the English ones make a 400 say what is wrong with a field.
z.config(en());

const jsonHeaders = { "content-type": "application/json", "cache-control": "no-store" };

export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return { statusCode, headers: { ...jsonHeaders, ...headers }, body: JSON.stringify(body) };
}

/**
 * Maps any error to `{error: {code, message}}`. 4xx expose the domain message; 5xx and unknown
 * errors never echo internals. 429/503 carry Retry-After.
 */
export function errorResponse(error: unknown, logger: Logger): APIGatewayProxyResult {
  if (error instanceof DomainError) {
    const statusCode = statusByKind[error.kind];
    const headers: Record<string, string> =
      error.retryAfterSeconds === undefined ? {} : { "retry-after": String(error.retryAfterSeconds) };
    if (statusCode >= 500) {
      logger.error("dependency failure", {
        code: error.code,
        detail: error.message,
        cause: causeName(error),
      });
      return jsonResponse(
        statusCode,
        { error: { code: error.code, message: "Service unavailable; retry later." } },
        headers,
      );
    }
    if (statusCode === 429) logger.warn("throttled", { code: error.code, cause: causeName(error) });
    return jsonResponse(statusCode, { error: { code: error.code, message: error.message } }, headers);
  }
  logger.error("unexpected error", { error: error instanceof Error ? error.name : "unknown" });
  return jsonResponse(500, { error: { code: "INTERNAL", message: "Internal error." } });
}

function causeName(error: Error): string | undefined {
  return error.cause instanceof Error ? error.cause.name : undefined;
}

/**
 * Reads a JSON body: size limit first (413), then JSON syntax, then the schema (400, naming the
 * fields but never echoing their values).
 */
export function parseJsonBody<S extends z.ZodMiniType>(
  event: APIGatewayProxyEvent,
  schema: S,
  maxBytes: number,
): z.infer<S> {
  const raw = event.body ?? "";
  const text = event.isBase64Encoded ? Buffer.from(raw, "base64").toString("utf8") : raw;
  if (Buffer.byteLength(text, "utf8") > maxBytes) {
    throw new PayloadTooLargeError(`The request body is larger than ${maxBytes} bytes.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ValidationError("The request body is not valid JSON.");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join(".") || "body"}: ${issue.message}`)
      .join("; ");
    throw new ValidationError(`Invalid request: ${fields}`);
  }
  return parsed.data;
}
