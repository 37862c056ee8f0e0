import { MetricUnit, type Metrics as PowertoolsMetrics } from "@aws-lambda-powertools/metrics";
import type { MetricDimensions, MetricName, Metrics } from "#core/metrics.ts";

/**
 * The metrics port on Powertools Metrics (CloudWatch embedded metric format: one JSON log line per
 * flush, no API call). A metric without dimensions is buffered and flushed at the end of the
 * invocation (`logMetrics` / `publishStoredMetrics`); one with dimensions goes out at once as a
 * single metric, because Powertools' dimensions apply to the whole buffer. Both carry the
 * function's `service` dimension.
 */
export class PowertoolsMetricsPort implements Metrics {
  constructor(readonly powertools: PowertoolsMetrics) {}

  count(name: MetricName, dimensions?: MetricDimensions, value = 1): void {
    this.emit(name, MetricUnit.Count, value, dimensions);
  }

  duration(name: MetricName, milliseconds: number, dimensions?: MetricDimensions): void {
    this.emit(name, MetricUnit.Milliseconds, milliseconds, dimensions);
  }

  private emit(
    name: string,
    unit: (typeof MetricUnit)[keyof typeof MetricUnit],
    value: number,
    dimensions?: MetricDimensions,
  ): void {
    if (!dimensions || Object.keys(dimensions).length === 0) {
      this.powertools.addMetric(name, unit, value);
      return;
    }
    const single = this.powertools.singleMetric();
    single.addDimensions({ ...dimensions });
    single.addMetric(name, unit, value);
  }
}
