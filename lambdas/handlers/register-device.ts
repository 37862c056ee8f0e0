import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import { DomainError } from "#core/errors.ts";
import type { Logger } from "#core/logger.ts";
import { METRIC, type Metrics, noMetrics } from "#core/metrics.ts";
import { type RegistrationDeps, registerDevice } from "#core/registration/register-device.ts";
import { parseAliyunRegisterForm, verifyAliyunRegisterForm } from "#credentials/aliyun-register-form.ts";
import { type HttpHandler, type HttpMiddleware, httpHandler } from "./http-middleware.ts";

const HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

/** Alibaba's answer shape: `{code, data?, message}` with `code` 200 on success (seed 002). */
function answer(
  statusCode: number,
  body: { code: number; message: string; data?: unknown; errorCode?: string },
) {
  return { statusCode, headers: HEADERS, body: JSON.stringify(body) } satisfies APIGatewayProxyResult;
}

/** A form that does not parse: the credentials module's field, answered 400 INVALID_REQUEST. */
class InvalidRegisterFormError extends Error {
  override readonly name = "InvalidRegisterFormError";
  constructor(readonly field: string) {
    super(`Invalid form field ${field}.`);
  }
}

/**
 * `POST /auth/register/device`: Alibaba's HTTPS dynamic registration for pre-registered devices
 * (form-urlencoded productKey, deviceName, random, sign, signMethod). Answers
 * `{code: 200, data: {productKey, deviceName, deviceSecret}, message: "success"}`; a refusal
 * answers the HTTP status in `code` too (400 malformed, 403 not allowed, 409 already registered),
 * with `errorCode`, from the one error mapper below (middy). Never logs the form (it carries a
 * signature) or the secret. `outer`: the runtime's middlewares (Lambda: Powertools').
 */
export function makeRegisterDeviceHandler(
  deps: RegistrationDeps & { metrics?: Metrics },
  outer: HttpMiddleware[] = [],
): HttpHandler {
  return httpHandler(
    async (event) => {
      const form = parseForm(bodyText(event));
      const result = await registerDevice(deps, {
        productKey: form.productKey,
        deviceName: form.deviceName,
        authType: "register",
        verify: (productSecret) => verifyAliyunRegisterForm(form, productSecret),
      });
      if (result.authType !== "register") throw new Error("unexpected registration result");
      return answer(200, {
        code: 200,
        data: {
          productKey: result.productKey,
          deviceName: result.deviceName,
          deviceSecret: result.deviceSecret,
        },
        message: "success",
      });
    },
    {
      mapError: (error, event) => registrationErrorAnswer(error, deps.logger, formIds(event)),
      metrics: deps.metrics ?? noMetrics,
      outcomeMetric: METRIC.registrations,
      outcomeOf: (_response, error) =>
        error === undefined
          ? "REGISTERED"
          : error instanceof InvalidRegisterFormError
            ? "INVALID_REQUEST"
            : error instanceof DomainError
              ? error.code
              : "UNAVAILABLE",
      outer,
    },
  );
}

function bodyText(event: APIGatewayProxyEvent): string {
  const raw = event.body ?? "";
  return event.isBase64Encoded ? Buffer.from(raw, "base64").toString("utf8") : raw;
}

function parseForm(text: string): ReturnType<typeof parseAliyunRegisterForm> {
  try {
    return parseAliyunRegisterForm(text);
  } catch (error) {
    throw new InvalidRegisterFormError((error as { field?: string }).field ?? "form");
  }
}

/**
 * The registration API's error mapper, in Alibaba's shape: a malformed form 400; a domain refusal
 * 403 (forbidden), 409 (conflict) or 400; anything else (a dependency, throttling, a bug) 503 with
 * Retry-After and no detail.
 */
function registrationErrorAnswer(
  error: unknown,
  logger: Logger,
  ids: { productKey?: string; deviceName?: string },
): APIGatewayProxyResult {
  if (error instanceof InvalidRegisterFormError) {
    logger.warn("registration rejected", { status: 400, field: error.field });
    return answer(400, { code: 400, errorCode: "INVALID_REQUEST", message: error.message });
  }
  if (error instanceof DomainError && error.kind !== "unavailable" && error.kind !== "throttled") {
    const status = error.kind === "forbidden" ? 403 : error.kind === "conflict" ? 409 : 400;
    logger.warn("registration rejected", { status, code: error.code, ...ids });
    return answer(status, { code: status, errorCode: error.code, message: error.message });
  }
  logger.error("registration failed", { error: error instanceof Error ? error.name : "unknown" });
  return {
    ...answer(503, { code: 503, errorCode: "UNAVAILABLE", message: "Service unavailable; retry later." }),
    headers: { ...HEADERS, "retry-after": "2" },
  };
}

/** The product key and device name of a form that parsed (for the refusal's log line). */
function formIds(event: APIGatewayProxyEvent): { productKey?: string; deviceName?: string } {
  try {
    const form = parseAliyunRegisterForm(bodyText(event));
    return { productKey: form.productKey, deviceName: form.deviceName };
  } catch {
    return {};
  }
}
