import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import { DomainError } from "#core/errors.ts";
import type { Logger } from "#core/logger.ts";
import { type RegistrationDeps, registerDevice } from "#core/registration/register-device.ts";
import { parseAliyunRegisterForm, verifyAliyunRegisterForm } from "#credentials/aliyun-register-form.ts";

const HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

/** Alibaba's answer shape: `{code, data?, message}` with `code` 200 on success (seed 002). */
function answer(
  statusCode: number,
  body: { code: number; message: string; data?: unknown; errorCode?: string },
) {
  return { statusCode, headers: HEADERS, body: JSON.stringify(body) } satisfies APIGatewayProxyResult;
}

/**
 * `POST /auth/register/device`: Alibaba's HTTPS dynamic registration for pre-registered devices
 * (form-urlencoded productKey, deviceName, random, sign, signMethod). Answers
 * `{code: 200, data: {productKey, deviceName, deviceSecret}, message: "success"}`; a refusal
 * answers the HTTP status in `code` too (400 malformed, 403 not allowed, 409 already registered),
 * with `errorCode`. Never logs the form (it carries a signature) or the secret.
 */
export function makeRegisterDeviceHandler(deps: RegistrationDeps) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const raw = event.body ?? "";
    const text = event.isBase64Encoded ? Buffer.from(raw, "base64").toString("utf8") : raw;
    let form: ReturnType<typeof parseAliyunRegisterForm>;
    try {
      form = parseAliyunRegisterForm(text);
    } catch (error) {
      const field = (error as { field?: string }).field ?? "form";
      deps.logger.warn("registration rejected", { status: 400, field });
      return answer(400, {
        code: 400,
        errorCode: "INVALID_REQUEST",
        message: `Invalid form field ${field}.`,
      });
    }
    try {
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
    } catch (error) {
      if (error instanceof DomainError && error.kind !== "unavailable" && error.kind !== "throttled") {
        const status = error.kind === "forbidden" ? 403 : error.kind === "conflict" ? 409 : 400;
        deps.logger.warn("registration rejected", {
          status,
          code: error.code,
          productKey: form.productKey,
          deviceName: form.deviceName,
        });
        return answer(status, { code: status, errorCode: error.code, message: error.message });
      }
      deps.logger.error("registration failed", { error: error instanceof Error ? error.name : "unknown" });
      return {
        ...answer(503, { code: 503, errorCode: "UNAVAILABLE", message: "Service unavailable; retry later." }),
        headers: { ...HEADERS, "retry-after": "2" },
      };
    }
  };
}
