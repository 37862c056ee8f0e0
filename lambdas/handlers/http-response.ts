import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import {
  DomainError,
  type ErrorKind,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
} from "#core/errors.ts";
import type { Logger } from "#core/logger.ts";

/** The one place where domain errors become HTTP status codes. */
const statusByKind: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  "not-found": 404,
  conflict: 409,
  "too-large": 413,
  "unsupported-media-type": 415,
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
 * Reads a JSON body: media type first (415 unless `Content-Type: application/json`), size limit
 * (413), then JSON syntax, then the schema (400, naming the fields but never echoing their values).
 */
export function parseJsonBody<S extends z.ZodMiniType>(
  event: APIGatewayProxyEvent,
  schema: S,
  maxBytes: number,
): z.infer<S> {
  requireJsonContentType(event);
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

const JSON_ONLY = "The request body must be sent as Content-Type: application/json (UTF-8).";

/**
 * Accepts exactly one Content-Type header whose media type is `application/json` (any case),
 * with parameters allowed (`; charset=utf-8`) except a charset other than UTF-8: the body is read
 * as UTF-8 (RFC 8259). Anything else, or no Content-Type at all, is a 415. API Gateway passes
 * header names as the client sent them, so the lookup ignores case; a header repeated with
 * different values (`multiValueHeaders`) is refused rather than guessed at.
 */
export function requireJsonContentType(event: APIGatewayProxyEvent): void {
  const values = headerValues(event, "content-type");
  if (values.length !== 1) throw new UnsupportedMediaTypeError(JSON_ONLY);
  const [mediaType = "", ...parameters] = values[0]!.split(";");
  if (mediaType.trim().toLowerCase() !== "application/json") throw new UnsupportedMediaTypeError(JSON_ONLY);
  for (const parameter of parameters) {
    const [name = "", value = ""] = parameter.split("=", 2);
    const charset = value
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .toLowerCase();
    if (name.trim().toLowerCase() === "charset" && charset !== "utf-8" && charset !== "utf8") {
      throw new UnsupportedMediaTypeError(JSON_ONLY);
    }
  }
}

/** The distinct values of a header, whatever the case of its name, from both header maps. */
function headerValues(event: APIGatewayProxyEvent, name: string): string[] {
  const values = new Set<string>();
  for (const [key, list] of Object.entries(event.multiValueHeaders ?? {})) {
    if (key.toLowerCase() === name) for (const value of list ?? []) values.add(value.trim());
  }
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === name && value !== undefined) values.add(value.trim());
  }
  return [...values];
}
