/**
 * The metrics port: what the flows count and time. Powertools Metrics (CloudWatch EMF) implements
 * it on Lambda (`lambdas/entrypoints/lambda-metrics.ts`), a counter in memory in the local stack
 * (`local/local-metrics.ts`, served at `GET /_onramp/metrics`). The core never imports an SDK.
 *
 * Dimensions are low-cardinality labels only (an outcome, an error code, a reason, a step), never
 * a serial, a certificate id or anything a caller chooses.
 */
export type MetricDimensions = Readonly<Record<string, string>>;

export interface Metrics {
  /** Adds `value` (default 1) to the counter `name` with these dimensions. */
  count(name: MetricName, dimensions?: MetricDimensions, value?: number): void;
  /** Records one duration in milliseconds. */
  duration(name: MetricName, milliseconds: number, dimensions?: MetricDimensions): void;
}

export const noMetrics: Metrics = { count() {}, duration() {} };

/** The CloudWatch namespace of every metric; the CDK alarms and dashboard read the same names. */
export const METRICS_NAMESPACE = "IotOnramp";

/**
 * Every metric name, one place for the handlers, the local counters and the CDK alarms. Each is
 * emitted with the dimension `service` (the function's name, `METRIC_SERVICES`) plus those noted.
 */
export const METRIC = {
  /** Vending API answers, dimension `outcome`: CREATED, REPLAYED or the error code (e.g. INVALID_SIGNATURE). */
  vends: "Vends",
  /** Dynamic registration (HTTPS) answers, dimension `outcome`: REGISTERED or the error code. */
  registrations: "Registrations",
  /** JITR certificates activated. */
  jitrActivations: "JitrActivations",
  /** JITR certificates refused, dimension `reason` (e.g. device-revoked, untrusted-ca). */
  jitrRefusals: "JitrRefusals",
  /** JITR events that changed nothing, dimension `outcome` (already-active, ignored, in-progress). */
  jitrNoops: "JitrNoops",
  /** Each step an undo ran, dimensions `flow` (vend, jitr, rotation) and `step`. */
  undoSteps: "UndoSteps",
  /** Undo steps that failed (what `registry reconcile` repairs), no dimension beyond `service`. */
  undoFailures: "UndoFailures",
  /** Fleet pre-provisioning hook decisions, dimensions `decision` (allow, deny) and `reason`. */
  fleetHookDecisions: "FleetHookDecisions",
  /** Fleet commit outcomes, dimension `outcome`. */
  fleetCommits: "FleetCommits",
  /** Custom authorizer decisions, dimensions `decision` (allow, deny) and `reason`. */
  authorizerDecisions: "AuthorizerDecisions",
  /** Certificate rotation answers, dimension `outcome`: ACCEPTED or the refusal code. */
  rotations: "Rotations",
  /** Binding token reports and device resets over MQTT, dimensions `kind` (match, reset) and `outcome` (200 or the refusal code). */
  bindingReports: "BindingReports",
  /** Phone binding API answers, dimension `outcome`: the status class and code (e.g. 201, BINDING_REFUSED). */
  bindingRequests: "BindingRequests",
  /** Handler latency in milliseconds (every function). */
  latency: "Latency",
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** The `service` dimension of each function: its Powertools service name. */
export const METRIC_SERVICES = {
  vend: "vend-certificate",
  registerDevice: "register-device",
  jitr: "jitr-registration",
  fleetHook: "pre-provisioning-hook",
  fleetCommit: "fleet-commit",
  authorizer: "custom-authorizer",
  rotation: "certificate-rotation",
  bindingReport: "binding-report",
  bindingApi: "binding-api",
} as const;

/** Measures `run` and records its duration as `METRIC.latency`, whether it resolves or throws. */
export async function timed<T>(metrics: Metrics, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await run();
  } finally {
    metrics.duration(METRIC.latency, performance.now() - started);
  }
}
