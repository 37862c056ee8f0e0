import { Duration } from "aws-cdk-lib";
import type { RestApiBase } from "aws-cdk-lib/aws-apigateway";
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  Stats,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { METRIC, METRIC_SERVICES, METRICS_NAMESPACE } from "#core/metrics.ts";

/** A function to watch: its label in alarm names and on the dashboard, and its Powertools service. */
export type WatchedFunction = { label: string; function: IFunction; service: string };

export type ObservabilityProps = {
  /** Every function: errors and throttles alarms, a latency graph. */
  functions: readonly WatchedFunction[];
  /** Dead-letter queues by label (JITR, fleet commit, rotation): an alarm as soon as one holds a message. */
  deadLetterQueues: Readonly<Record<string, IQueue>>;
  /**
   * The REST APIs by label (`Api`: the vending API, `PhoneApi`): a 5xx rate alarm
   * (`{label}ServerErrorRate`) and a requests / 4xx / 5xx graph each.
   */
  apis: Readonly<Record<string, RestApiBase>>;
  /** Functions whose flows undo (service names): the undo failures alarm sums their `UndoFailures`. */
  undoServices?: readonly string[];
  /** Alarm notifications by email (context `alarmEmail`): an encrypted SNS topic with this subscriber. */
  alarmEmail?: string;
  /** The API's 5xx share of requests that raises the alarm (default 5 %). */
  serverErrorRate?: number;
  /** Dashboard name (default: the construct path's). */
  dashboardName?: string;
};

const FIVE_MINUTES = Duration.minutes(5);

/**
 * CloudWatch alarms and one dashboard for the provisioning stack. Alarms: each dead-letter queue
 * not empty, each API's 5xx rate, errors and throttles of each function, undo failures (from the
 * functions' own `UndoFailures` metric, namespace `IotOnramp`). With `alarmEmail`, every alarm
 * (and its return to OK) notifies an SNS topic encrypted with a customer key CloudWatch may use.
 */
export class Observability extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;
  /** The alarms' topic, only with `alarmEmail`. */
  readonly topic?: Topic;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const undoServices = props.undoServices ?? [
      METRIC_SERVICES.vend,
      METRIC_SERVICES.jitr,
      METRIC_SERVICES.rotation,
    ];

    for (const [label, queue] of Object.entries(props.deadLetterQueues)) {
      this.alarm(`${label}DeadLetters`, {
        metric: queue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(1),
          statistic: Stats.MAXIMUM,
        }),
        threshold: 1,
        description: `${label}: the dead-letter queue holds a message (an event the rule could not deliver, or the function failed after its retries). Read it, fix the cause, re-drive it.`,
      });
    }

    const rate = props.serverErrorRate ?? 0.05;
    const apiMetrics = Object.entries(props.apis).map(([label, api]) => {
      const serverErrors = api.metricServerError({ period: FIVE_MINUTES, statistic: Stats.SUM });
      const requests = api.metricCount({ period: FIVE_MINUTES, statistic: Stats.SUM });
      this.alarm(`${label}ServerErrorRate`, {
        metric: new MathExpression({
          expression: "IF(requests > 0, errors / requests, 0)",
          usingMetrics: { errors: serverErrors, requests },
          period: FIVE_MINUTES,
          label: "5xx share of requests",
        }),
        threshold: rate,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
        description: `${label}: more than ${rate * 100} % of requests answered with a 5xx in 2 of 3 five-minute periods (a dependency is failing: see the functions' logs).`,
      });
      return { label, api, serverErrors, requests };
    });

    for (const watched of props.functions) {
      this.alarm(`${watched.label}Errors`, {
        metric: watched.function.metricErrors({ period: FIVE_MINUTES, statistic: Stats.SUM }),
        threshold: 1,
        description: `${watched.label}: the function failed (an invocation ended in an error).`,
      });
      this.alarm(`${watched.label}Throttles`, {
        metric: watched.function.metricThrottles({ period: FIVE_MINUTES, statistic: Stats.SUM }),
        threshold: 1,
        description: `${watched.label}: invocations were throttled (account or reserved concurrency).`,
      });
    }

    const undoFailures = Object.fromEntries(
      undoServices.map((service, i) => [`u${i}`, this.metric(METRIC.undoFailures, service)]),
    );
    this.alarm("UndoFailures", {
      metric: new MathExpression({
        expression: Object.keys(undoFailures)
          .map((k) => `FILL(${k}, 0)`)
          .join(" + "),
        usingMetrics: undoFailures,
        period: FIVE_MINUTES,
        label: "undo steps that failed",
      }),
      threshold: 1,
      description:
        "A failed flow could not undo its own work (a certificate, thing or claim left behind). Run `onramp registry reconcile --aws`.",
    });

    if (props.alarmEmail) {
      const key = new Key(this, "AlarmTopicKey", {
        enableKeyRotation: true,
        description: "iot-onramp alarm topic: CloudWatch publishes alarm notifications",
      });
      key.grant(new ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*");
      const topic = new Topic(this, "AlarmTopic", {
        displayName: "iot-onramp alarms",
        masterKey: key,
        enforceSSL: true,
      });
      topic.addSubscription(new EmailSubscription(props.alarmEmail));
      const action = new SnsAction(topic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
      this.topic = topic;
    }

    this.dashboard = new Dashboard(this, "Dashboard", {
      ...(props.dashboardName ? { dashboardName: props.dashboardName } : {}),
      defaultInterval: Duration.hours(6),
    });
    const search = (name: string, dimensions: string[], title: string) =>
      new GraphWidget({
        title,
        width: 8,
        left: [
          new MathExpression({
            expression: `SEARCH('{${METRICS_NAMESPACE},${["service", ...dimensions].join(",")}} MetricName="${name}"', 'Sum', 300)`,
            usingMetrics: {},
            period: FIVE_MINUTES,
            label: "",
          }),
        ],
      });
    this.dashboard.addWidgets(new AlarmStatusWidget({ title: "Alarms", alarms: this.alarms, width: 24 }));
    this.dashboard.addWidgets(
      search(METRIC.vends, ["outcome"], "Vends by outcome"),
      search(METRIC.registrations, ["outcome"], "Registrations (HTTPS) by outcome"),
      search(METRIC.jitrRefusals, ["reason"], "JITR refusals by reason"),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "JITR activations",
        width: 8,
        left: [this.metric(METRIC.jitrActivations, METRIC_SERVICES.jitr)],
      }),
      search(METRIC.fleetHookDecisions, ["decision", "reason"], "Fleet hook allow / deny"),
      search(METRIC.authorizerDecisions, ["decision", "reason"], "Authorizer allow / deny by reason"),
    );
    this.dashboard.addWidgets(
      search(METRIC.rotations, ["outcome"], "Rotations by outcome"),
      search(METRIC.undoSteps, ["flow", "step"], "Undo steps"),
      new GraphWidget({
        title: "Undo failures",
        width: 8,
        left: undoServices.map((service) => this.metric(METRIC.undoFailures, service)),
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Latency p99 (ms)",
        width: 8,
        left: props.functions.map((f) =>
          this.metric(METRIC.latency, f.service, Stats.p(99)).with({ label: f.label }),
        ),
      }),
      new GraphWidget({
        title: "Lambda errors / throttles",
        width: 8,
        left: props.functions.map((f) =>
          f.function.metricErrors({ period: FIVE_MINUTES, label: `${f.label} errors` }),
        ),
        right: props.functions.map((f) =>
          f.function.metricThrottles({ period: FIVE_MINUTES, label: `${f.label} throttles` }),
        ),
      }),
      ...apiMetrics.map(
        ({ label, api, serverErrors, requests }) =>
          new GraphWidget({
            title: `${label} requests / 4xx / 5xx`,
            width: 8,
            left: [requests, api.metricClientError({ period: FIVE_MINUTES }), serverErrors],
          }),
      ),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Dead-letter queues (messages)",
        width: 24,
        left: Object.entries(props.deadLetterQueues).map(([label, queue]) =>
          queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), label }),
        ),
      }),
    );
  }

  private metric(name: string, service: string, statistic: string = Stats.SUM): Metric {
    return new Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { service },
      period: FIVE_MINUTES,
      statistic,
    });
  }

  private alarm(
    id: string,
    options: {
      metric: IMetric;
      threshold: number;
      description: string;
      evaluationPeriods?: number;
      datapointsToAlarm?: number;
      comparison?: ComparisonOperator;
    },
  ): Alarm {
    const alarm = new Alarm(this, id, {
      metric: options.metric,
      threshold: options.threshold,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      ...(options.datapointsToAlarm ? { datapointsToAlarm: options.datapointsToAlarm } : {}),
      comparisonOperator: options.comparison ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: options.description,
    });
    this.alarms.push(alarm);
    return alarm;
  }
}
