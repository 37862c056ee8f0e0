import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";

/** A Lambda proxy handler as the runtime calls it: (event, context), e.g. a middy handler. */
export type LambdaHttpHandler = (
  event: APIGatewayProxyEvent,
  context: Context,
) => Promise<APIGatewayProxyResult>;
/**
 * A route: `path` may hold `{name}` segments, matched as API Gateway matches a resource's path
 * parameters (one whole segment each) and passed in `event.pathParameters`; `event.resource` is
 * the template. `auth: "jwt"` puts the route behind the listener's JWT authorizer (API Gateway's
 * Cognito user-pool authorizer).
 */
export type Route = { method: string; path: string; handler: LambdaHttpHandler; auth?: "jwt" };

/** Verifies a bearer JWT; the claims, or undefined when it is not valid. */
export type JwtVerifier = (token: string) => Promise<Record<string, unknown> | undefined>;

/** API Gateway's own payload limit; the handlers enforce their tighter limits themselves. */
const GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Serves Lambda proxy handlers over plain HTTP the way API Gateway (REST, proxy integration)
 * would: the request becomes an APIGatewayProxyEvent, the handler's result becomes the response.
 */
export function apiGatewayListener(
  routes: Route[],
  options: { verifyJwt?: JwtVerifier } = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const matches = routes.flatMap((r) => {
      const parameters = matchPath(r.path, url.pathname);
      return parameters ? [{ route: r, parameters }] : [];
    });
    const found = matches.find((m) => m.route.method === req.method);
    if (!found) {
      const known = matches.length > 0;
      send(
        res,
        gatewayError(known ? 405 : 404, known ? "METHOD_NOT_ALLOWED" : "NOT_FOUND", "No such route."),
      );
      return;
    }
    readBody(req, GATEWAY_MAX_BODY_BYTES).then(
      async (body) => {
        if (body === undefined) {
          send(res, gatewayError(413, "REQUEST_TOO_LARGE", "Request Too Long"));
          return;
        }
        const { route, parameters } = found;
        const event = toEvent(req, url, body, route.path, parameters);
        if (route.auth === "jwt") {
          const claims = await authorize(req, options.verifyJwt);
          if (!claims) {
            // What the deployed API answers for a missing, forged or expired token: the Cognito
            // authorizer's UNAUTHORIZED through the stack's DEFAULT_4XX gateway response.
            send(res, gatewayError(401, "UNAUTHORIZED", "Unauthorized"));
            return;
          }
          (event.requestContext as { authorizer?: unknown }).authorizer = { claims };
        }
        // A function that throws: API Gateway's 502, in the stack's DEFAULT_5XX gateway response.
        const result = await route
          .handler(event, localContext(event))
          .catch(() => gatewayError(502, "UNAVAILABLE", "Service unavailable; retry later."));
        send(res, result);
      },
      () => res.destroy(),
    );
  };
}

/**
 * Headers as API Gateway's REST proxy integration passes them: names as the client spelled them
 * (not lower-cased, as Node's `req.headers` would), `headers` holding the last value of a
 * repeated header and `multiValueHeaders` every value.
 */
function eventHeaders(req: IncomingMessage): {
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
} {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const value = req.rawHeaders[i + 1]!;
    headers[name] = value;
    multiValueHeaders[name] = [...(multiValueHeaders[name] ?? []), value];
  }
  return { headers, multiValueHeaders };
}

/**
 * Matches a path against a route template: the path parameters (`{}` for a literal route), or
 * undefined. A `{name}` matches one non-empty segment, URL-decoded.
 */
export function matchPath(template: string, path: string): Record<string, string> | undefined {
  const want = template.split("/");
  const got = path.split("/");
  if (want.length !== got.length) return undefined;
  const parameters: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const segment = want[i]!;
    const value = got[i]!;
    const name = /^\{([A-Za-z0-9_]+)\}$/.exec(segment)?.[1];
    if (name === undefined) {
      if (segment !== value) return undefined;
      continue;
    }
    if (value.length === 0) return undefined;
    try {
      parameters[name] = decodeURIComponent(value);
    } catch {
      return undefined;
    }
  }
  return parameters;
}

/**
 * The Cognito authorizer's part: `Authorization: Bearer <JWT>` (API Gateway also takes the bare
 * token), verified; the claims as API Gateway passes them to a REST proxy integration, every value
 * a string (a list joined with ','). Undefined means 401.
 */
async function authorize(
  req: IncomingMessage,
  verify: JwtVerifier | undefined,
): Promise<Record<string, string> | undefined> {
  const header = req.headers.authorization;
  if (!verify || typeof header !== "string") return undefined;
  const token = header.replace(/^Bearer\s+/i, "").trim();
  if (token.length === 0 || token.length > 8192) return undefined;
  const claims = await verify(token);
  if (!claims) return undefined;
  return Object.fromEntries(
    Object.entries(claims).map(([name, value]) => [
      name,
      Array.isArray(value) ? value.join(",") : String(value),
    ]),
  );
}

function toEvent(
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  resource: string,
  parameters: Record<string, string>,
): APIGatewayProxyEvent {
  const { headers, multiValueHeaders } = eventHeaders(req);
  const query = Object.fromEntries(url.searchParams.entries());
  return {
    resource,
    path: url.pathname,
    httpMethod: req.method ?? "GET",
    headers,
    multiValueHeaders,
    queryStringParameters: Object.keys(query).length ? query : null,
    multiValueQueryStringParameters: null,
    pathParameters: Object.keys(parameters).length ? parameters : null,
    stageVariables: null,
    body: body.length ? body.toString("utf8") : null,
    isBase64Encoded: false,
    requestContext: {
      requestId: randomUUID(),
      stage: "local",
      httpMethod: req.method ?? "GET",
      path: url.pathname,
      identity: { sourceIp: req.socket.remoteAddress ?? "127.0.0.1" },
    } as APIGatewayProxyEvent["requestContext"],
  };
}

/** How long a local invocation may take before the context says no time is left (API Gateway's 29 s). */
const LOCAL_TIMEOUT_MS = 29_000;

/** A minimal Lambda context for a local invocation: ids, names and the remaining time. */
function localContext(event: APIGatewayProxyEvent): Context {
  const deadline = Date.now() + LOCAL_TIMEOUT_MS;
  const functionName = `local${event.resource.replace(/[{}]/g, "").replaceAll("/", "-")}`;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: "256",
    awsRequestId: event.requestContext.requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/**
 * An answer API Gateway makes itself, in the shape the deployed stacks give every gateway response
 * (lib/constructs/vending-api.ts `addErrorResponses`: `{"error": {"code", "message"}}`, JSON,
 * not cached), so a client sees the same body locally and on AWS.
 */
function gatewayError(statusCode: number, code: string, message: string): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
    body: JSON.stringify({ error: { code, message } }),
  };
}

function send(res: ServerResponse, result: APIGatewayProxyResult): void {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
  const body = result.isBase64Encoded ? Buffer.from(result.body, "base64") : Buffer.from(result.body, "utf8");
  res.writeHead(result.statusCode, { ...headers, "content-length": String(body.length) }).end(body);
}
