import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { RestApi } from "aws-cdk-lib/aws-apigateway";
import { Code, Function as LambdaFunction, Runtime } from "aws-cdk-lib/aws-lambda";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks } from "cdk-nag";
import { METRIC, METRIC_SERVICES, METRICS_NAMESPACE } from "#core/metrics.ts";
import { readOnrampConfig } from "#lib/config.ts";
import { Observability } from "#lib/constructs/observability.ts";
import { appWithContext, defaultApp, resourcesOfType } from "./app-fixture.ts";

type Json = Record<string, unknown>;

/** The construct alone in a stack: two functions, one queue, an API. */
function standalone(alarmEmail?: string): { stack: Stack; template: Template; app: App } {
  const app = new App();
  const stack = new Stack(app, "Obs");
  const fn = (id: string) =>
    new LambdaFunction(stack, id, {
      runtime: Runtime.NODEJS_22_X,
      handler: "index.handler",
      code: Code.fromInline("export const handler = async () => ({});"),
    });
  const api = new RestApi(stack, "Api");
  api.root.addMethod("GET");
  new Observability(stack, "Observability", {
    functions: [
      { label: "Vend", function: fn("VendFn"), service: METRIC_SERVICES.vend },
      { label: "Jitr", function: fn("JitrFn"), service: METRIC_SERVICES.jitr },
    ],
    deadLetterQueues: { Jitr: new Queue(stack, "Dlq") },
    apis: { Api: api },
    ...(alarmEmail ? { alarmEmail } : {}),
  });
  return { stack, template: Template.fromStack(stack), app };
}

describe("Observability construct", () => {
  it("alarms: each dead-letter queue, the 5xx rate, errors and throttles per function, undo failures", () => {
    const { template } = standalone();
    const alarms = resourcesOfType(template, "AWS::CloudWatch::Alarm");
    assert.equal(Object.keys(alarms).length, 1 + 1 + 2 * 2 + 1);
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ApproximateNumberOfMessagesVisible",
      Namespace: "AWS/SQS",
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      TreatMissingData: "notBreaching",
    });
    for (const metric of ["Errors", "Throttles"]) {
      template.resourcePropertiesCountIs(
        "AWS::CloudWatch::Alarm",
        { MetricName: metric, Namespace: "AWS/Lambda", Threshold: 1 },
        2,
      );
    }
    // The 5xx rate: 5XXError / Count, more than 5 % in 2 of 3 periods.
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Threshold: 0.05,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 2,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: "IF(requests > 0, errors / requests, 0)" }),
        Match.objectLike({
          MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: "5XXError" }) }),
        }),
      ]),
    });
    // Undo failures: the functions' own metric, summed over the flows that undo.
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Threshold: 1,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: "FILL(u0, 0) + FILL(u1, 0) + FILL(u2, 0)" }),
        ...[METRIC_SERVICES.vend, METRIC_SERVICES.jitr, METRIC_SERVICES.rotation].map((service) =>
          Match.objectLike({
            MetricStat: Match.objectLike({
              Metric: {
                Namespace: METRICS_NAMESPACE,
                MetricName: METRIC.undoFailures,
                Dimensions: [{ Name: "service", Value: service }],
              },
            }),
          }),
        ),
      ]),
    });
    template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
    template.resourceCountIs("AWS::SNS::Topic", 0);
    for (const alarm of Object.values(alarms)) {
      assert.equal((alarm.Properties as Json).AlarmActions, undefined, "no topic, no action");
      assert.ok(String((alarm.Properties as Json).AlarmDescription).length > 20);
    }
  });

  it("with alarmEmail: an encrypted TLS-only topic, the email subscription, every alarm and its OK notify it", () => {
    const { template } = standalone("ops@example.com");
    template.resourceCountIs("AWS::SNS::Topic", 1);
    template.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "email",
      Endpoint: "ops@example.com",
    });
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
    template.hasResourceProperties("AWS::KMS::Key", {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: "cloudwatch.amazonaws.com" },
            Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
          }),
        ]),
      },
    });
    const topicId = Object.keys(resourcesOfType(template, "AWS::SNS::Topic"))[0];
    for (const alarm of Object.values(resourcesOfType(template, "AWS::CloudWatch::Alarm"))) {
      const props = alarm.Properties as Json;
      assert.deepEqual(props.AlarmActions, [{ Ref: topicId }]);
      assert.deepEqual(props.OKActions, [{ Ref: topicId }]);
    }
  });

  it("the dashboard graphs the counters by their dimensions and the alarms' state", () => {
    const { template } = standalone();
    const dashboard = Object.values(resourcesOfType(template, "AWS::CloudWatch::Dashboard"))[0];
    const body = JSON.stringify((dashboard?.Properties as Json | undefined)?.DashboardBody);
    for (const name of [
      METRIC.vends,
      METRIC.jitrRefusals,
      METRIC.jitrActivations,
      METRIC.fleetHookDecisions,
      METRIC.authorizerDecisions,
      METRIC.rotations,
      METRIC.undoSteps,
      METRIC.undoFailures,
      METRIC.latency,
    ]) {
      assert.ok(body.includes(name), `${name} on the dashboard`);
    }
    assert.match(body, /alarm/);
  });

  it("is cdk-nag clean, with and without the topic", () => {
    for (const email of [undefined, "ops@example.com"]) {
      const { app } = standalone(email);
      const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app);
      const findings = report.violations
        .filter((v) => v.violatingResources.some((r) => r.constructPath?.includes("/Observability/")))
        .map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(", ")}`);
      assert.deepEqual(findings, [], findings.join("\n"));
    }
  });
});

describe("Observability in the provisioning stack", () => {
  it("watches all nine functions, the four dead-letter queues and JITR's backlog, one dashboard, no topic by default", () => {
    const template = defaultApp().provisioningTemplate;
    const alarms = resourcesOfType(template, "AWS::CloudWatch::Alarm");
    // dead letters (JITR, fleet commit, rotation, binding report), the vending and phone APIs' 5xx
    // rates, errors and throttles of each function, undo failures, JITR's work-queue backlog.
    assert.equal(Object.keys(alarms).length, 4 + 2 + 9 * 2 + 1 + 1);
    for (const label of ["Api", "PhoneApi"]) {
      assert.equal(
        Object.keys(alarms).filter((id) => id.startsWith(`Observability${label}ServerErrorRate`)).length,
        1,
        `${label}: a 5xx rate alarm`,
      );
    }
    template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
    template.resourceCountIs("AWS::SNS::Topic", 0);
    const queues = Object.keys(resourcesOfType(template, "AWS::SQS::Queue"));
    const watched = Object.values(alarms)
      .flatMap((a) => ((a.Properties as Json).Dimensions as { Value: unknown }[] | undefined) ?? [])
      .map((d) => JSON.stringify(d.Value));
    for (const queue of queues) {
      assert.ok(
        watched.some((v) => v.includes(queue)),
        `the dead-letter queue ${queue} has an alarm`,
      );
    }
  });

  it("-c alarmEmail=... adds the topic and its subscription; the app stays cdk-nag clean", () => {
    const synthesized = appWithContext("alarm-email", { alarmEmail: "ops@example.com" });
    synthesized.provisioningTemplate.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "email",
      Endpoint: "ops@example.com",
    });
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(synthesized.app);
    const findings = report.violations.map(
      (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(", ")}`,
    );
    assert.deepEqual(findings, [], findings.join("\n"));
  });

  it("refuses an alarmEmail that is not an address", () => {
    const app = new App({ context: { alarmEmail: "ops at example" } });
    assert.throws(() => readOnrampConfig(app.node, {}), /alarmEmail/);
  });
});
