import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import * as z from "zod/mini";
import { type BindingDeps, bindDevice } from "#core/binding/bind-device.ts";
import { listMyDevices, listOwners, unbindDevice } from "#core/binding/manage-bindings.ts";
import {
  type Binding,
  type BindingUser,
  bindingTokenSchema,
  MissingIdentityError,
  OPERATOR_GROUP,
} from "#core/binding/model.ts";
import { type PhoneTokenStatus, pollPhoneToken, registerPhoneToken } from "#core/binding/phone-token.ts";
import { DomainError, NotFoundError, ValidationError } from "#core/errors.ts";
import { METRIC, type Metrics, noMetrics } from "#core/metrics.ts";
import { productKeySchema, serialNumberSchema } from "#core/registry/model.ts";
import { type HttpHandler, type HttpMiddleware, httpHandler } from "./http-middleware.ts";
import { errorResponse, jsonResponse, parseJsonBody } from "./http-response.ts";

const MAX_BODY_BYTES = 1024;
export const bindRequestSchema = z.object({
  productKey: productKeySchema,
  deviceName: serialNumberSchema,
  token: bindingTokenSchema,
});
export const tokenRequestSchema = z.object({ token: bindingTokenSchema });
const deviceParamsSchema = z.object({ productKey: productKeySchema, deviceName: serialNumberSchema });
const listQuerySchema = z.object({
  limit: z.optional(z.string().check(z.regex(/^([1-9]|[1-9][0-9]|100)$/, "a whole number from 1 to 100"))),
  nextToken: z.optional(z.string().check(z.maxLength(2048))),
});

/** The phone API's routes, as API Gateway names them in `event.resource`. */
export const BINDING_ROUTES = {
  bind: { method: "POST", path: "/v1/bindings" },
  registerToken: { method: "POST", path: "/v1/binding-tokens" },
  tokenStatus: { method: "POST", path: "/v1/binding-tokens/status" },
  listDevices: { method: "GET", path: "/v1/devices" },
  unbind: { method: "DELETE", path: "/v1/bindings/{productKey}/{deviceName}" },
  owners: { method: "GET", path: "/v1/products/{productKey}/devices/{deviceName}/owners" },
} as const;

/**
 * The phone API (one Lambda proxy for every route): the user comes from the Cognito authorizer's
 * claims (`requestContext.authorizer.claims`: `sub`, `cognito:username`, `cognito:groups`; the
 * local API server fills them the same way after verifying the JWT). Bodies are parsed with zod;
 * errors go through the one mapper (`http-response.ts`). Never logs a token or the event.
 */
export function makeBindingApiHandler(
  deps: BindingDeps & { metrics?: Metrics },
  outer: HttpMiddleware[] = [],
): HttpHandler {
  return httpHandler((event) => route(deps, event), {
    mapError: (error) => errorResponse(error, deps.logger),
    metrics: deps.metrics ?? noMetrics,
    outcomeMetric: METRIC.bindingRequests,
    outcomeOf: (response, error) =>
      error === undefined
        ? String(response.statusCode)
        : error instanceof DomainError
          ? error.code
          : "INTERNAL",
    outer,
  });
}

async function route(deps: BindingDeps, event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  const user = userOf(event);
  const key = `${event.httpMethod} ${event.resource}`;
  const is = (r: { method: string; path: string }) => key === `${r.method} ${r.path}`;
  if (is(BINDING_ROUTES.bind)) {
    const body = parseJsonBody(event, bindRequestSchema, MAX_BODY_BYTES);
    const result = await bindDevice(deps, {
      user,
      device: { productKey: body.productKey, deviceName: body.deviceName },
      token: body.token,
    });
    return jsonResponse(result.created ? 201 : 200, { binding: bindingView(result.binding) });
  }
  if (is(BINDING_ROUTES.registerToken)) {
    const body = parseJsonBody(event, tokenRequestSchema, MAX_BODY_BYTES);
    const status = await registerPhoneToken(deps, { user, token: body.token });
    return tokenStatusResponse(status, status.status === "pending" ? 202 : status.created ? 201 : 200);
  }
  if (is(BINDING_ROUTES.tokenStatus)) {
    const body = parseJsonBody(event, tokenRequestSchema, MAX_BODY_BYTES);
    return tokenStatusResponse(await pollPhoneToken(deps, { user, token: body.token }), 200);
  }
  if (is(BINDING_ROUTES.listDevices)) {
    const query = parseOrThrow(listQuerySchema, event.queryStringParameters ?? {}, "query");
    const page = await listMyDevices(deps, {
      user,
      ...(query.limit ? { limit: Number(query.limit) } : {}),
      ...(query.nextToken ? { cursor: query.nextToken } : {}),
    });
    return jsonResponse(200, page);
  }
  if (is(BINDING_ROUTES.unbind)) {
    const device = parseOrThrow(deviceParamsSchema, event.pathParameters ?? {}, "path");
    await unbindDevice(deps, { user, device });
    return { statusCode: 204, headers: { "cache-control": "no-store" }, body: "" };
  }
  if (is(BINDING_ROUTES.owners)) {
    const device = parseOrThrow(deviceParamsSchema, event.pathParameters ?? {}, "path");
    return jsonResponse(200, await listOwners(deps, { user, device }));
  }
  throw new NotFoundError("No such route.");
}

function tokenStatusResponse(status: PhoneTokenStatus, statusCode: number): APIGatewayProxyResult {
  if (status.status === "pending")
    return jsonResponse(statusCode, { status: "pending", expiresAt: status.expiresAt });
  return jsonResponse(statusCode, { status: "bound", binding: bindingView(status.binding) });
}

function bindingView(binding: Binding) {
  return {
    productKey: binding.productKey,
    deviceName: binding.deviceName,
    userId: binding.userId,
    boundAt: binding.boundAt,
  };
}

function parseOrThrow<S extends z.ZodMiniType>(schema: S, value: unknown, where: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues
    .slice(0, 5)
    .map((issue) => `${where}.${issue.path.join(".")}: ${issue.message}`)
    .join("; ");
  throw new ValidationError(`Invalid request: ${fields}`);
}

/**
 * The signed-in user from the Cognito authorizer's claims. API Gateway (REST) passes every claim
 * as a string: `cognito:groups` of several groups arrives as "a,b" (or "[a b]"); an array is taken
 * too.
 */
export function userOf(event: APIGatewayProxyEvent): BindingUser {
  const claims = (event.requestContext?.authorizer as { claims?: Record<string, unknown> } | null | undefined)
    ?.claims;
  const sub = claims?.sub;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 128) throw new MissingIdentityError();
  const username =
    typeof claims?.["cognito:username"] === "string" ? (claims["cognito:username"] as string) : sub;
  const rawGroups = claims?.["cognito:groups"];
  const groups = Array.isArray(rawGroups)
    ? rawGroups.map(String)
    : typeof rawGroups === "string"
      ? rawGroups
          .replace(/^\[|\]$/g, "")
          .split(/[,\s]+/)
          .filter(Boolean)
      : [];
  return { userId: sub, username, operator: groups.includes(OPERATOR_GROUP) };
}
