import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Match } from "aws-cdk-lib/assertions";
import { COAP_PORT, GATEWAY_SCALING, HEALTH_PATH, HEALTH_PORT } from "#lib/constructs/coap-gateway.ts";
import { createOnrampApp } from "#lib/onramp-app.ts";
import { COAP_GATEWAY_OUTPUTS } from "#lib/outputs.ts";
import { appWithContext, defaultApp } from "./app-fixture.ts";

const gatewayApp = () => appWithContext("coap-gateway", { coapGateway: "true" });

/** The statements of the task role's policy (the role ECS gives the container, not the execution role). */
function taskRoleStatements(): { Sid?: string; Action: string | string[]; Resource: unknown }[] {
  const template = gatewayApp().provisioningTemplate;
  const roles = template.findResources("AWS::IAM::Role", {
    Properties: {
      AssumeRolePolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: "ecs-tasks.amazonaws.com" } })]),
      },
    },
  });
  const taskDefinition = Object.values(template.findResources("AWS::ECS::TaskDefinition"))[0] as {
    Properties: { TaskRoleArn: { "Fn::GetAtt": [string, string] } };
  };
  const taskRole = taskDefinition.Properties.TaskRoleArn["Fn::GetAtt"][0];
  assert.ok(roles[taskRole], "the task role is assumed by ECS tasks");
  const policies = Object.values(template.findResources("AWS::IAM::Policy")).filter((p) =>
    (p as { Properties: { Roles: { Ref: string }[] } }).Properties.Roles.some((r) => r.Ref === taskRole),
  ) as { Properties: { PolicyDocument: { Statement: [] } } }[];
  assert.equal(policies.length, 1);
  return policies[0]?.Properties.PolicyDocument.Statement ?? [];
}

const actions = (statement: { Action: string | string[] }) => [statement.Action].flat().sort();

describe("CoAP gateway (ECS Fargate behind a UDP NLB)", () => {
  it("is off by default: no cluster, load balancer or outputs", () => {
    const template = defaultApp().provisioningTemplate;
    template.resourceCountIs("AWS::ECS::Cluster", 0);
    template.resourceCountIs("AWS::ElasticLoadBalancingV2::LoadBalancer", 0);
    template.resourceCountIs("AWS::EC2::VPC", 0);
    assert.deepEqual(Object.keys(template.findOutputs("CoapGateway*")), []);
    assert.throws(
      () => createOnrampApp({ context: { coapGatewayVpcId: "vpc-0123456789abcdef0" } }, {}),
      /coapGatewayVpcId needs coapGateway=true/,
    );
  });

  it("listens on UDP 5684 on an internet-facing NLB, forwarding to a UDP target group of IP targets", () => {
    const template = gatewayApp().provisioningTemplate;
    template.hasResourceProperties("AWS::ElasticLoadBalancingV2::LoadBalancer", {
      Type: "network",
      Scheme: "internet-facing",
    });
    template.hasResourceProperties("AWS::ElasticLoadBalancingV2::Listener", {
      Port: COAP_PORT,
      Protocol: "UDP",
    });
    template.hasResourceProperties("AWS::ElasticLoadBalancingV2::TargetGroup", {
      Port: COAP_PORT,
      Protocol: "UDP",
      TargetType: "ip",
      TargetGroupAttributes: Match.arrayWith([
        { Key: "stickiness.enabled", Value: "true" },
        { Key: "stickiness.type", Value: "source_ip" },
      ]),
    });
    const outputs = template.findOutputs("*");
    assert.ok(outputs[COAP_GATEWAY_OUTPUTS.dnsName]);
    assert.equal(outputs[COAP_GATEWAY_OUTPUTS.port]?.Value, String(COAP_PORT));
  });

  it("health-checks the UDP targets over HTTP on the health port", () => {
    gatewayApp().provisioningTemplate.hasResourceProperties("AWS::ElasticLoadBalancingV2::TargetGroup", {
      HealthCheckProtocol: "HTTP",
      HealthCheckPort: String(HEALTH_PORT),
      HealthCheckPath: HEALTH_PATH,
    });
  });

  it("runs ARM64 Fargate tasks with the container's UDP and health ports and a log group with retention", () => {
    const template = gatewayApp().provisioningTemplate;
    template.hasResourceProperties("AWS::ECS::TaskDefinition", {
      RequiresCompatibilities: ["FARGATE"],
      RuntimePlatform: { CpuArchitecture: "ARM64", OperatingSystemFamily: "LINUX" },
      ContainerDefinitions: [
        Match.objectLike({
          PortMappings: [
            { ContainerPort: COAP_PORT, Protocol: "udp" },
            { ContainerPort: HEALTH_PORT, Protocol: "tcp" },
          ],
          Environment: Match.arrayWith([Match.objectLike({ Name: "REGISTRY_TABLE_NAME" })]),
          LogConfiguration: Match.objectLike({ LogDriver: "awslogs" }),
        }),
      ],
    });
    template.hasResourceProperties("AWS::Logs::LogGroup", { RetentionInDays: 365 });
    template.hasResourceProperties("AWS::ECS::Service", { LaunchType: "FARGATE" });
  });

  it("builds the image from gateway/Dockerfile for linux/arm64 at deploy time (synth stages the files only)", () => {
    const { assembly } = gatewayApp();
    const manifest = JSON.parse(
      readFileSync(join(assembly.directory, "IotOnramp-Provisioning.assets.json"), "utf8"),
    ) as {
      dockerImages?: Record<
        string,
        { source: { directory: string; dockerFile?: string; platform?: string } }
      >;
    };
    const images = Object.values(manifest.dockerImages ?? {}).map((image) => image.source);
    assert.equal(images.length, 1);
    assert.equal(images[0]?.dockerFile, "gateway/Dockerfile");
    // Only the build stage's inputs are staged (GATEWAY_IMAGE_FILES), not node_modules or cdk.out.
    const staged = readdirSync(join(assembly.directory, images[0]?.directory ?? "")).sort();
    assert.deepEqual(staged, [
      "gateway",
      "lambdas",
      "package-lock.json",
      "package.json",
      "tsconfig.json",
      "vendor",
    ]);
    assert.equal(images[0]?.platform, "linux/arm64");
  });

  it("scales the service on CPU between the minimum and maximum task counts", () => {
    const template = gatewayApp().provisioningTemplate;
    template.hasResourceProperties("AWS::ApplicationAutoScaling::ScalableTarget", {
      MinCapacity: GATEWAY_SCALING.minTasks,
      MaxCapacity: GATEWAY_SCALING.maxTasks,
      ScalableDimension: "ecs:service:DesiredCount",
    });
    template.hasResourceProperties("AWS::ApplicationAutoScaling::ScalingPolicy", {
      PolicyType: "TargetTrackingScaling",
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: "ECSServiceAverageCPUUtilization" },
        TargetValue: GATEWAY_SCALING.cpuTargetPercent,
      }),
    });
  });

  it("gives the task role exactly what the gateway calls", () => {
    const statements = taskRoleStatements();
    const bySid = Object.fromEntries(statements.map((s) => [s.Sid, s]));
    assert.deepEqual(Object.keys(bySid).sort(), [
      "IotActionsWithoutResourceType",
      "IotPublishDeviceUplinks",
      "IotThings",
      "ProductSecretsAndRegistryKey",
      "RegistryTableItems",
    ]);
    assert.deepEqual(actions(bySid.RegistryTableItems!), ["dynamodb:GetItem", "dynamodb:UpdateItem"]);
    assert.deepEqual(actions(bySid.ProductSecretsAndRegistryKey!), ["secretsmanager:GetSecretValue"]);
    assert.deepEqual(actions(bySid.IotThings!), ["iot:CreateThing", "iot:DescribeThing"]);
    assert.deepEqual(actions(bySid.IotActionsWithoutResourceType!), ["iot:DescribeEndpoint"]);
    assert.deepEqual(actions(bySid.IotPublishDeviceUplinks!), ["iot:Publish"]);
    assert.match(JSON.stringify(bySid.IotPublishDeviceUplinks?.Resource), /:topic\/\/sys\/\*"/);
  });

  it("opens only UDP 5684 to the internet, on the NLB's security group; tasks take traffic from it alone", () => {
    const template = gatewayApp().provisioningTemplate;
    const open = Object.values(template.findResources("AWS::EC2::SecurityGroup")).flatMap((sg) =>
      (
        (
          sg as {
            Properties: {
              SecurityGroupIngress?: { CidrIp?: string; IpProtocol: string; FromPort: number }[];
            };
          }
        ).Properties.SecurityGroupIngress ?? []
      ).filter((rule) => rule.CidrIp === "0.0.0.0/0"),
    );
    assert.deepEqual(
      open.map((r) => `${r.IpProtocol}/${r.FromPort}`),
      [`udp/${COAP_PORT}`],
    );
    template.hasResourceProperties("AWS::EC2::SecurityGroupIngress", {
      IpProtocol: "tcp",
      FromPort: HEALTH_PORT,
      SourceSecurityGroupId: Match.anyValue(),
    });
    template.resourceCountIs("AWS::EC2::NatGateway", 0);
  });
});
