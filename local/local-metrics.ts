import { METRICS_NAMESPACE, type MetricDimensions, type MetricName, type Metrics } from "#core/metrics.ts";

/** One counter: a metric name, the function (`service`) and its dimensions. */
export type CounterSnapshot = {
  service: string;
  name: string;
  dimensions: Record<string, string>;
  value: number;
};

/** Durations of one metric of one function: how many, total, average and maximum (ms). */
export type DurationSnapshot = {
  service: string;
  name: string;
  dimensions: Record<string, string>;
  count: number;
  totalMs: number;
  averageMs: number;
  maxMs: number;
};

/** What `GET /_onramp/metrics` answers (JSON). */
export type MetricsSnapshot = {
  namespace: string;
  since: string;
  counters: CounterSnapshot[];
  durations: DurationSnapshot[];
};

export const LOCAL_METRICS_PATH = "/_onramp/metrics";

/**
 * The local stack's metrics: the same counters the Lambda functions emit to CloudWatch (same
 * names, same `service` and dimensions), kept in memory since the stack started and served as JSON
 * at `GET /_onramp/metrics`. `forService(name)` gives one function's port.
 */
export class LocalMetrics {
  #since = new Date();
  readonly #counters = new Map<string, CounterSnapshot>();
  readonly #durations = new Map<string, Omit<DurationSnapshot, "averageMs">>();

  forService(service: string): Metrics {
    return {
      count: (name, dimensions, value = 1) => this.#count(service, name, dimensions, value),
      duration: (name, milliseconds, dimensions) => this.#duration(service, name, milliseconds, dimensions),
    };
  }

  /** The value of one counter (0 when never counted); without dimensions, summed over all of them. */
  value(service: string, name: MetricName, dimensions?: MetricDimensions): number {
    let total = 0;
    for (const counter of this.#counters.values()) {
      if (counter.service !== service || counter.name !== name) continue;
      if (dimensions && key(service, name, counter.dimensions) !== key(service, name, dimensions)) continue;
      total += counter.value;
    }
    return total;
  }

  snapshot(): MetricsSnapshot {
    return {
      namespace: METRICS_NAMESPACE,
      since: this.#since.toISOString(),
      counters: [...this.#counters.values()]
        .map((c) => ({ ...c, dimensions: { ...c.dimensions } }))
        .sort(byKey),
      durations: [...this.#durations.values()]
        .map((d) => ({ ...d, dimensions: { ...d.dimensions }, averageMs: round(d.totalMs / d.count) }))
        .sort(byKey),
    };
  }

  reset(): void {
    this.#counters.clear();
    this.#durations.clear();
    this.#since = new Date();
  }

  #count(service: string, name: string, dimensions: MetricDimensions = {}, value = 1): void {
    const id = key(service, name, dimensions);
    const counter = this.#counters.get(id);
    if (counter) counter.value += value;
    else this.#counters.set(id, { service, name, dimensions: sorted(dimensions), value });
  }

  #duration(service: string, name: string, milliseconds: number, dimensions: MetricDimensions = {}): void {
    const id = key(service, name, dimensions);
    const ms = round(milliseconds);
    const entry = this.#durations.get(id);
    if (entry) {
      entry.count += 1;
      entry.totalMs = round(entry.totalMs + ms);
      entry.maxMs = Math.max(entry.maxMs, ms);
    } else {
      this.#durations.set(id, {
        service,
        name,
        dimensions: sorted(dimensions),
        count: 1,
        totalMs: ms,
        maxMs: ms,
      });
    }
  }
}

function sorted(dimensions: MetricDimensions): Record<string, string> {
  return Object.fromEntries(Object.entries(dimensions).sort(([a], [b]) => a.localeCompare(b)));
}

function key(service: string, name: string, dimensions: MetricDimensions): string {
  return JSON.stringify([service, name, sorted(dimensions)]);
}

function byKey(a: { service: string; name: string; dimensions: MetricDimensions }, b: typeof a): number {
  return key(a.service, a.name, a.dimensions).localeCompare(key(b.service, b.name, b.dimensions));
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
