import middy, { type MiddlewareObj } from "@middy/core";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { METRIC, type MetricName, type Metrics } from "#core/metrics.ts";

/** A middleware of an API Gateway (REST, proxy) function. */
export type HttpMiddleware = MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context>;
/** What the Lambda runtime (and the local stack's API Gateway adapter) calls. */
export type HttpHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

/** Turns any error the handler throws into the answer; `http-response.ts` (or an API's own shape). */
export type ErrorMapper = (error: unknown, event: APIGatewayProxyEvent) => APIGatewayProxyResult;

/** What a request ended as, for the outcome counter: a success name, or the error's code. */
export type OutcomeOf = (response: APIGatewayProxyResult, error: unknown) => string;

export type HttpHandlerOptions = {
  /** The one error mapper: a thrown error becomes its answer (handlers have no try/catch). */
  mapError: ErrorMapper;
  metrics: Metrics;
  /** Counted once per request with dimension `outcome`. */
  outcomeMetric: MetricName;
  outcomeOf: OutcomeOf;
  /**
   * Runtime middlewares that wrap everything else (Lambda: Powertools' `injectLambdaContext` and
   * `logMetrics`, so the counters of a failed request are published after it was mapped).
   */
  outer?: HttpMiddleware[];
};

/**
 * An HTTP-facing Lambda handler on middy: `outer` middlewares, then the outcome and latency
 * metrics, then the error mapper, around `base`. Middy runs `after`/`onError` in reverse order,
 * so the mapper sets the answer first and the metrics and Powertools see the mapped answer.
 * Called as a Lambda handler `(event, context)`; the local stack passes a minimal context.
 */
export function httpHandler(
  base: (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>,
  options: HttpHandlerOptions,
): HttpHandler {
  const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context>();
  for (const middleware of options.outer ?? []) handler.use(middleware);
  // Middy's type adds a third argument (a response stream's options) that a non-streaming
  // handler never reads: the runtime calls it with (event, context).
  return handler
    .use(outcomeMetrics(options.metrics, options.outcomeMetric, options.outcomeOf))
    .use(mapErrors(options.mapError))
    .handler((event) => base(event)) as HttpHandler;
}

/** The error-mapping middleware: sets the answer and does not rethrow. */
export function mapErrors(mapError: ErrorMapper): HttpMiddleware {
  return {
    name: "mapErrors",
    onError: (request) => {
      request.response = mapError(request.error, request.event);
    },
  };
}

const startedAt = new WeakMap<object, number>();

/** Counts the answer under `name` by outcome and records the latency (success and failure alike). */
export function outcomeMetrics(metrics: Metrics, name: MetricName, outcomeOf: OutcomeOf): HttpMiddleware {
  const record = (request: { event: object; response: APIGatewayProxyResult | null; error: unknown }) => {
    const started = startedAt.get(request.event);
    if (started !== undefined) metrics.duration(METRIC.latency, performance.now() - started);
    if (request.response) {
      metrics.count(name, { outcome: outcomeOf(request.response, request.error ?? undefined) });
    }
  };
  return {
    name: "outcomeMetrics",
    before: (request) => {
      startedAt.set(request.event, performance.now());
    },
    after: (request) => record(request),
    onError: (request) => record(request),
  };
}
