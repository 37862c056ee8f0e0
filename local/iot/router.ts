import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { IotServiceError, invalidRequest } from "./errors.ts";
import type { FaultInjector } from "./faults.ts";
import type { EmulatorContext, Route } from "./operation.ts";
import type { OperationQuotas } from "./quotas.ts";

/** Largest request body accepted (bytes); AWS IoT's largest inputs (templates, PEMs) are far smaller. */
const MAX_BODY_BYTES = 1024 * 1024;

type CompiledRoute = Route & { segments: Array<{ literal: string } | { label: string }> };

/** Where the fault-injection control API lives. */
export const FAULTS_PATH = "/_emulator/faults";
/** `POST` here empties the registry (see `IotEmulator.reset`). */
export const RESET_PATH = "/_emulator/reset";

/**
 * The region a request was signed for: the credential scope of SigV4
 * (`Credential=<key>/<date>/<region>/<service>/aws4_request`, in the Authorization header or the
 * `X-Amz-Credential` query parameter), or undefined when unsigned.
 */
export function signedRegion(headers: IncomingHttpHeaders, query: URLSearchParams): string | undefined {
  const authorization = headers.authorization ?? "";
  const credential =
    /Credential=([^,\s]+)/.exec(authorization)?.[1] ?? query.get("X-Amz-Credential") ?? undefined;
  const region = credential?.split("/")[2];
  return region && /^[a-z0-9-]{1,32}$/.test(region) ? region : undefined;
}

/**
 * Dispatches AWS IoT REST-JSON requests to operation handlers: matches method and path (labels
 * URL-decoded per segment, as the SDK encodes them), counts the call, applies injected faults and
 * AWS's rate quotas when enabled (ThrottlingException),
 * parses the JSON body and writes the JSON answer or the AWS error once the state is on disk.
 * Signatures are not checked here (the local stack's AWS endpoint checks them in front).
 */
export class Router {
  private readonly routes: CompiledRoute[];

  constructor(
    routes: Route[],
    private readonly context: EmulatorContext,
    private readonly faults: FaultInjector,
    /** Empties the registry (`POST /_emulator/reset`). */
    private readonly reset: () => Promise<void> = async () => {},
    /** AWS's per-operation TPS (quotas.ts), checked before an operation runs; none when absent. */
    private readonly quotas?: OperationQuotas,
  ) {
    this.routes = routes.map((route) => ({
      ...route,
      segments: route.path
        .split("/")
        .slice(1)
        .map((part) => (part.startsWith("{") ? { label: part.slice(1, -1) } : { literal: part })),
    }));
  }

  /** The operation names this router serves. */
  get operations(): Set<string> {
    return new Set(this.routes.map((r) => r.operation));
  }

  /**
   * A node http request listener; `body` is the request body when a front (the local stack's
   * signature check) has read it already.
   */
  readonly listener = (req: IncomingMessage, res: ServerResponse, body?: Buffer): void => {
    this.handle(req, res, body).catch((error: unknown) => {
      this.context.logger.error("iot emulator: unexpected failure", { error: String(error) });
      if (!res.headersSent)
        sendError(res, new IotServiceError("InternalFailureException", "Internal failure."));
      else res.destroy();
    });
  };

  private async handle(req: IncomingMessage, res: ServerResponse, received?: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator.local");
    let segments: string[];
    try {
      segments = url.pathname.split("/").slice(1).map(decodeURIComponent);
    } catch {
      return sendError(res, invalidRequest("The request path is not valid percent-encoding."));
    }
    if (url.pathname === FAULTS_PATH) return this.handleFaults(req, res, received);
    if (url.pathname === RESET_PATH) return this.handleReset(req, res, received);

    const method = (req.method ?? "GET").toUpperCase();
    const match = this.match(method, segments);
    if (!match) {
      if (!received) req.resume();
      return sendError(
        res,
        new IotServiceError(
          "UnknownOperationException",
          `The IoT emulator has no operation for ${method} ${url.pathname}.`,
          {},
          404,
        ),
      );
    }
    const fault = this.faults.take(match.route.operation) ?? this.quotas?.take(match.route.operation);
    let body: unknown;
    try {
      body = await readJsonBody(req, received);
    } catch (error) {
      return sendError(
        res,
        error instanceof IotServiceError ? error : invalidRequest("Cannot read the request body."),
      );
    }
    if (fault) return sendError(res, fault);
    // ARNs name the region the client signed for (AWS IoT's registry is regional), else the default.
    const region = signedRegion(req.headers, url.searchParams);
    const context =
      region && region !== this.context.scope.region
        ? { ...this.context, scope: { ...this.context.scope, region } }
        : this.context;
    let outcome: { result: unknown } | { error: unknown };
    try {
      outcome = {
        result: await match.route.handler(context, {
          labels: match.labels,
          query: url.searchParams,
          headers: req.headers,
          body,
        }),
      };
    } catch (error) {
      outcome = { error };
    }
    // Nothing is answered before it is on disk: not this request's writes (a failed operation may
    // have written part of its work) nor the concurrent ones its answer may show.
    await this.context.durable();
    await this.faults.answerGate(match.route.operation);
    if ("result" in outcome) return sendJson(res, 200, outcome.result ?? {});
    const error = outcome.error;
    if (error instanceof IotServiceError) return sendError(res, error);
    this.context.logger.error("iot emulator: operation failed", {
      operation: match.route.operation,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    sendError(res, new IotServiceError("InternalFailureException", "Internal failure."));
  }

  private match(method: string, segments: string[]) {
    for (const route of this.routes) {
      if (route.method !== method || route.segments.length !== segments.length) continue;
      const labels: Record<string, string> = {};
      let matched = true;
      for (const [i, part] of route.segments.entries()) {
        const segment = segments[i] ?? "";
        if ("literal" in part) {
          if (part.literal !== segment) {
            matched = false;
            break;
          }
        } else {
          if (segment === "") {
            matched = false;
            break;
          }
          labels[part.label] = segment;
        }
      }
      if (matched) return { route, labels };
    }
    return undefined;
  }

  /** `POST` empties the registry and clears pending faults; nothing else is accepted. */
  private async handleReset(req: IncomingMessage, res: ServerResponse, received?: Buffer): Promise<void> {
    if (!received) req.resume();
    if (req.method !== "POST") return sendError(res, invalidRequest(`${RESET_PATH} takes POST.`));
    this.faults.clear();
    await this.reset();
    sendJson(res, 200, { reset: true });
  }

  /** `POST` arms a fault, `DELETE` clears them, `GET` lists pending faults and call counts. */
  private async handleFaults(req: IncomingMessage, res: ServerResponse, received?: Buffer): Promise<void> {
    try {
      const body = await readJsonBody(req, received);
      switch (req.method) {
        case "POST": {
          const specs = Array.isArray(body) ? body : [body];
          for (const spec of specs) this.faults.inject(spec as never);
          return sendJson(res, 200, { pending: this.faults.pending() });
        }
        case "DELETE":
          this.faults.clear();
          return sendJson(res, 200, { pending: [] });
        case "GET":
          return sendJson(res, 200, { pending: this.faults.pending(), calls: this.faults.allCalls() });
        default:
          return sendError(res, invalidRequest(`${FAULTS_PATH} takes GET, POST or DELETE.`));
      }
    } catch (error) {
      sendError(res, error instanceof IotServiceError ? error : invalidRequest(String(error)));
    }
  }
}

async function readJsonBody(req: IncomingMessage, received?: Buffer): Promise<unknown> {
  const chunks: Buffer[] = received ? [received] : [];
  let size = received?.length ?? 0;
  if (size > MAX_BODY_BYTES) throw invalidRequest(`The request body exceeds ${MAX_BODY_BYTES} bytes.`);
  if (!received) {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) throw invalidRequest(`The request body exceeds ${MAX_BODY_BYTES} bytes.`);
      chunks.push(chunk as Buffer);
    }
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw invalidRequest("The request body is not valid JSON.");
  }
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "x-amzn-RequestId": randomUUID(),
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, error: IotServiceError): void {
  sendJson(res, error.status, error.body(), { "x-amzn-ErrorType": error.errorType });
}
