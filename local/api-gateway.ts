import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";

/** A Lambda proxy handler as the runtime calls it: (event, context), e.g. a middy handler. */
export type LambdaHttpHandler = (
  event: APIGatewayProxyEvent,
  context: Context,
) => Promise<APIGatewayProxyResult>;
export type Route = { method: string; path: string; handler: LambdaHttpHandler };

/** API Gateway's own payload limit; the handlers enforce their tighter limits themselves. */
const GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Serves Lambda proxy handlers over plain HTTP the way API Gateway (REST, proxy integration)
 * would: the request becomes an APIGatewayProxyEvent, the handler's result becomes the response.
 */
export function apiGatewayListener(routes: Route[]): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const route = routes.find((r) => r.path === url.pathname && r.method === req.method);
    if (!route) {
      const known = routes.some((r) => r.path === url.pathname);
      send(res, {
        statusCode: known ? 405 : 404,
        body: JSON.stringify({
          error: { code: known ? "METHOD_NOT_ALLOWED" : "NOT_FOUND", message: "No such route." },
        }),
        headers: { "content-type": "application/json" },
      });
      return;
    }
    readBody(req, GATEWAY_MAX_BODY_BYTES).then(
      async (body) => {
        if (body === undefined) {
          send(res, { statusCode: 413, body: JSON.stringify({ message: "Request Too Long" }) });
          return;
        }
        const event = toEvent(req, url, body);
        const result = await route.handler(event, localContext(event)).catch(() => ({
          statusCode: 502,
          body: JSON.stringify({ message: "Internal server error" }),
        }));
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

function toEvent(req: IncomingMessage, url: URL, body: Buffer): APIGatewayProxyEvent {
  const { headers, multiValueHeaders } = eventHeaders(req);
  const query = Object.fromEntries(url.searchParams.entries());
  return {
    resource: url.pathname,
    path: url.pathname,
    httpMethod: req.method ?? "GET",
    headers,
    multiValueHeaders,
    queryStringParameters: Object.keys(query).length ? query : null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
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
  const functionName = `local${event.path.replaceAll("/", "-")}`;
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

function send(res: ServerResponse, result: APIGatewayProxyResult): void {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
  const body = result.isBase64Encoded ? Buffer.from(result.body, "base64") : Buffer.from(result.body, "utf8");
  res.writeHead(result.statusCode, { ...headers, "content-length": String(body.length) }).end(body);
}
