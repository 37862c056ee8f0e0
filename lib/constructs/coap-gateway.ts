import { fileURLToPath } from "node:url";
import { Duration, IgnoreMode, type RemovalPolicy, Stack, Token, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import { Platform } from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { UNSCOPABLE_IOT_RESOURCES } from "../iam-allow-list.ts";
import { iotArn, tableKeyStatements } from "../iam-grants.ts";
import { LAMBDA_SETTINGS } from "../lambda-settings.ts";
import { secretLoginStatements } from "./custom-authorizer.ts";

/** CoAP over DTLS (RFC 7252 §12.7 `coaps`): the port devices send to, on the NLB and in the task. */
export const COAP_PORT = 5684;
/** The container's `GET /health` (TCP): how the NLB checks a UDP target. */
export const HEALTH_PORT = 8080;
export const HEALTH_PATH = "/health";
/** Tasks: at least one, at most this many (CPU target tracking in between). */
export const GATEWAY_SCALING = { minTasks: 1, maxTasks: 4, cpuTargetPercent: 60 } as const;

/**
 * The image's build context is the repository root (the gateway imports lambdas/); only these
 * are staged into cdk.out and sent to Docker (the same list as gateway/Dockerfile.dockerignore).
 */
export const GATEWAY_IMAGE_FILES = [
  "*",
  "!package.json",
  "!package-lock.json",
  "!tsconfig.json",
  "!vendor",
  "!lambdas",
  "!gateway",
  "gateway/**/*.test.ts",
];

const repositoryRoot = fileURLToPath(new URL("../..", import.meta.url));

/** Settings of {@link CoapGateway}: the registry resources it uses, by reference. */
export type CoapGatewayProps = {
  table: ITable;
  /** The table's customer managed key, if any. */
  tableEncryptionKey?: IKey;
  registryKeySecretArn: string;
  registryKeySecretName: string;
  productSecretPrefix: string;
  /** `arn:…:secret:onramp/products/*`: product secrets are created later by the CLI. */
  productSecretArnPattern: string;
  /** Thing grants on `thing/{prefix}*` (lib/config.ts `thingNamePrefix`); default any thing. */
  thingNamePrefix?: string;
  /** An existing VPC (context `coapGatewayVpcId`; needs public subnets); default a new one. */
  vpc?: ec2.IVpc;
  logRetention: RetentionDays;
  /** Of the log group. */
  removalPolicy?: RemovalPolicy;
};

/**
 * The CoAP-over-DTLS gateway on AWS (gateway/main.ts): an ECS Fargate service (ARM64) behind a
 * Network Load Balancer with a UDP listener on 5684.
 *
 * Network, chosen for cost: a new VPC of two AZs with public subnets only and no NAT gateway. The
 * tasks get public IPv4 addresses for their outbound calls (DynamoDB, Secrets Manager, AWS IoT,
 * ECR, CloudWatch Logs); a NAT gateway per AZ would cost more than the tasks. Inbound, a task
 * accepts only what comes through the NLB's security group (the UDP port and the health port);
 * the NLB's security group is the one open to the internet, on UDP 5684 only.
 *
 * The target group keeps a device on one task: source-IP stickiness on top of the NLB's per-flow
 * (5-tuple) routing, so a device whose NAT changes only its port still reaches the task that has
 * its DTLS session (README "Deploy to AWS": what a changed address does to a session).
 *
 * The image is a Docker asset (gateway/Dockerfile, build context the repository root): `cdk synth`
 * only stages and fingerprints the files, so it needs no Docker engine; `cdk deploy` builds it
 * (linux/arm64) and pushes it to the bootstrap repository.
 */
export class CoapGateway extends Construct {
  readonly vpc: ec2.IVpc;
  readonly cluster: ecs.Cluster;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly service: ecs.FargateService;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly targetGroup: elbv2.NetworkTargetGroup;
  readonly logGroup: LogGroup;
  /** The NLB's security group: the only one open to the internet (UDP 5684). */
  readonly loadBalancerSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: CoapGatewayProps) {
    super(scope, id);
    this.vpc =
      props.vpc ??
      new ec2.Vpc(this, "Vpc", {
        maxAzs: 2,
        natGateways: 0,
        subnetConfiguration: [{ name: "Public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
        // Nothing uses the default security group; restricting it costs a custom-resource Lambda.
        restrictDefaultSecurityGroup: false,
      });

    this.cluster = new ecs.Cluster(this, "Cluster", {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    this.logGroup = new LogGroup(this, "Logs", {
      retention: props.logRetention,
      ...(props.removalPolicy ? { removalPolicy: props.removalPolicy } : {}),
    });

    this.taskDefinition = new ecs.FargateTaskDefinition(this, "Task", {
      cpu: 256,
      memoryLimitMiB: 512,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.ARM64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    for (const statement of coapGatewayStatements(this, props))
      this.taskDefinition.taskRole.addToPrincipalPolicy(statement);

    const container = this.taskDefinition.addContainer("Gateway", {
      image: ecs.ContainerImage.fromAsset(repositoryRoot, {
        file: "gateway/Dockerfile",
        platform: Platform.LINUX_ARM64,
        ignoreMode: IgnoreMode.DOCKER,
        exclude: GATEWAY_IMAGE_FILES,
      }),
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: "coap" }),
      environment: {
        [LAMBDA_SETTINGS.registryTableName]: props.table.tableName,
        [LAMBDA_SETTINGS.productSecretPrefix]: props.productSecretPrefix,
        [LAMBDA_SETTINGS.registryKeySecretName]: props.registryKeySecretName,
        COAP_PORT: String(COAP_PORT),
        HEALTH_PORT: String(HEALTH_PORT),
      },
      portMappings: [
        { containerPort: COAP_PORT, protocol: ecs.Protocol.UDP },
        { containerPort: HEALTH_PORT, protocol: ecs.Protocol.TCP },
      ],
      stopTimeout: Duration.seconds(30),
    });

    const taskSecurityGroup = new ec2.SecurityGroup(this, "TaskSecurityGroup", {
      vpc: this.vpc,
      description: "iot-onramp CoAP gateway tasks: the CoAP and health ports from the NLB only",
      allowAllOutbound: true,
    });
    this.service = new ecs.FargateService(this, "Service", {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: GATEWAY_SCALING.minTasks,
      assignPublicIp: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroups: [taskSecurityGroup],
      circuitBreaker: { rollback: true },
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
    });
    const scaling = this.service.autoScaleTaskCount({
      minCapacity: GATEWAY_SCALING.minTasks,
      maxCapacity: GATEWAY_SCALING.maxTasks,
    });
    scaling.scaleOnCpuUtilization("Cpu", {
      targetUtilizationPercent: GATEWAY_SCALING.cpuTargetPercent,
      // Scaling in stops a task, and its devices must handshake again: scale in slowly.
      scaleInCooldown: Duration.minutes(10),
      scaleOutCooldown: Duration.minutes(1),
    });

    this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, "LoadBalancerSecurityGroup", {
      vpc: this.vpc,
      description: "iot-onramp CoAP gateway NLB: CoAP over DTLS (UDP 5684) from devices anywhere",
      allowAllOutbound: false,
    });
    const lbSecurityGroup = this.loadBalancerSecurityGroup;
    lbSecurityGroup.addIngressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.udp(COAP_PORT),
      "CoAP over DTLS from devices",
    );
    lbSecurityGroup.addEgressRule(taskSecurityGroup, ec2.Port.udp(COAP_PORT), "to the gateway tasks");
    lbSecurityGroup.addEgressRule(taskSecurityGroup, ec2.Port.tcp(HEALTH_PORT), "health checks");
    taskSecurityGroup.addIngressRule(lbSecurityGroup, ec2.Port.udp(COAP_PORT), "CoAP from the NLB");
    taskSecurityGroup.addIngressRule(lbSecurityGroup, ec2.Port.tcp(HEALTH_PORT), "NLB health checks");

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, "LoadBalancer", {
      vpc: this.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroups: [lbSecurityGroup],
      crossZoneEnabled: true,
    });
    const listener = this.loadBalancer.addListener("Coap", { port: COAP_PORT, protocol: elbv2.Protocol.UDP });
    this.targetGroup = listener.addTargets("Gateway", {
      port: COAP_PORT,
      protocol: elbv2.Protocol.UDP,
      targets: [
        this.service.loadBalancerTarget({
          containerName: container.containerName,
          containerPort: COAP_PORT,
          protocol: ecs.Protocol.UDP,
        }),
      ],
      healthCheck: {
        protocol: elbv2.Protocol.HTTP,
        port: String(HEALTH_PORT),
        path: HEALTH_PATH,
        healthyHttpCodes: "200",
        interval: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
      // A stopping task answers 503 at once; give its devices' in-flight exchanges a moment.
      deregistrationDelay: Duration.seconds(30),
    });
    this.targetGroup.setAttribute("stickiness.enabled", "true");
    this.targetGroup.setAttribute("stickiness.type", "source_ip");

    this.acknowledgeNagFindings(props);
  }

  private acknowledgeNagFindings(props: CoapGatewayProps): void {
    const ack = (on: Construct, id: string, reason: string) => Validations.of(on).acknowledge({ id, reason });
    if (this.vpc instanceof ec2.Vpc) {
      ack(
        this.vpc,
        "AwsSolutions-VPC7",
        "the gateway's VPC carries only device UDP to one NLB and the tasks' AWS API calls; VPC flow logs are a per-GB cost left to the operator (add a FlowLog to this VPC to turn them on)",
      );
    }
    ack(
      this.loadBalancer,
      "AwsSolutions-ELB2",
      "a Network Load Balancer writes access logs only for TLS listeners; this one has a UDP listener (DTLS ends in the task), so there is nothing to log; the tasks log every handshake and session",
    );
    ack(
      this.loadBalancerSecurityGroup,
      "AwsSolutions-EC23",
      "the NLB is the public CoAP endpoint of NB-IoT devices anywhere: its security group opens UDP 5684 to 0.0.0.0/0 and nothing else; the tasks accept traffic only from this security group",
    );
    ack(
      this.taskDefinition,
      "AwsSolutions-ECS2",
      "the environment holds resource names only (registry table, secret names, ports), no secret value; the gateway reads the secrets from Secrets Manager with its task role",
    );
    ack(
      this.taskDefinition,
      "AwsSolutions-IAM5[Resource::*]",
      "the execution role's ecr:GetAuthorizationToken has no resource type (lib/iam-allow-list.ts); the task role's iot:DescribeEndpoint is account-level (no resource type) as well",
    );
    ack(
      this.taskDefinition,
      `AwsSolutions-IAM5[Resource::${nagArnPrefix(this, "iot")}:topic//sys/*]`,
      "the gateway publishes each device's uplinks as that device to /sys/{productKey}/{deviceKey}/...; product and device keys are registry data unknown at deploy time, and the gateway checks that a session only posts to its own topics (gateway/enos/topics.ts)",
    );
    const things = `thing/${props.thingNamePrefix ?? ""}*`;
    ack(
      this.taskDefinition,
      `AwsSolutions-IAM5[Resource::${nagArnPrefix(this, "iot")}:${things}]`,
      `DescribeThing and CreateThing only, for a device's first login (thing names are serial numbers, unknown at deploy time; ${things}: ${UNSCOPABLE_IOT_RESOURCES.thing.reason})`,
    );
    ack(
      this.taskDefinition,
      `AwsSolutions-IAM5[Resource::${nagArnPrefix(this, "secretsmanager")}:secret:${props.productSecretPrefix}*]`,
      `Product secrets are created later by the operator CLI under the ${props.productSecretPrefix} prefix; the grant is GetSecretValue only, on that prefix.`,
    );
  }
}

/** An ARN prefix as cdk-nag prints it (as lib/provisioning-stack.ts): unresolved parts become `<AWS::…>`. */
function nagArnPrefix(scope: Construct, service: string): string {
  const stack = Stack.of(scope);
  const part = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);
  return `arn:${part(stack.partition, "Partition")}:${service}:${part(stack.region, "Region")}:${part(stack.account, "AccountId")}`;
}

/**
 * Least privilege for the task role, derived from what gateway/enos calls through its ports
 * (gateway/enos/psk-login.ts, coap-gateway.ts) with gateway/main.ts's adapters:
 * - dynamodb-registry.ts: getProduct and getDevice (GetItem) for every PSK lookup; issueCredential
 *   (UpdateItem, conditional) in activateDevice; commitSecretLogin (UpdateItem) in recordFirstLogin.
 *   No PutItem, no Query.
 * - secrets-manager-store.ts: GetSecretValue of the product secret (SecureMode 3's key, derived
 *   device secrets) and of the registry key (deviceSigningSecret opens sealed secrets; activation
 *   seals a new one).
 * - iot-provisioning.ts: describeThing and createThing on the first login, on `thing/{prefix}*`;
 *   getDataEndpoint (DescribeEndpoint, no resource type).
 * - iot-data-publisher.ts: `iot:Publish` on `topic//sys/*` (the uplinks' topics start with "/").
 */
export function coapGatewayStatements(scope: Construct, props: CoapGatewayProps): PolicyStatement[] {
  return [
    ...secretLoginStatements(scope, props, ["iot:DescribeEndpoint"]),
    new PolicyStatement({
      sid: "IotPublishDeviceUplinks",
      effect: Effect.ALLOW,
      actions: ["iot:Publish"],
      resources: [iotArn(scope, "topic", "/sys/*")],
    }),
    ...tableKeyStatements(props.tableEncryptionKey, "read-write"),
  ];
}
