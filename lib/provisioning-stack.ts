import { Aws, CfnOutput, Fn, RemovalPolicy, Stack, type StackProps, Token, Validations } from "aws-cdk-lib";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Vpc } from "aws-cdk-lib/aws-ec2";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { Construct, IConstruct } from "constructs";
import type { IotQuotas } from "#core/admission/quota-profile.ts";
import { METRIC_SERVICES } from "#core/metrics.ts";
import type { PhoneApiConfig, VendingApiConfig } from "./config.ts";
import { BindingReport, bindingAnswerTopics } from "./constructs/binding-report.ts";
import { BulkProvisioning } from "./constructs/bulk-provisioning.ts";
import {
  CertificateRotation,
  ROTATION_ACTIONS_WITHOUT_RESOURCE_TYPE,
  rotationAnswerTopics,
} from "./constructs/certificate-rotation.ts";
import { COAP_PORT, CoapGateway } from "./constructs/coap-gateway.ts";
import { SecretDeviceAuthorizer } from "./constructs/custom-authorizer.ts";
import { DevicePolicy } from "./constructs/device-policy.ts";
import { FleetCommit } from "./constructs/fleet-commit.ts";
import { FleetProvisioning } from "./constructs/fleet-provisioning.ts";
import { IotProvisioningRole } from "./constructs/iot-provisioning-role.ts";
import { JitpProvisioning } from "./constructs/jitp.ts";
import { JitrRegistration } from "./constructs/jitr.ts";
import { Observability } from "./constructs/observability.ts";
import { PhoneApi } from "./constructs/phone-api.ts";
import { RegisterDeviceFunction } from "./constructs/register-device-function.ts";
import { VendFunction } from "./constructs/vend-function.ts";
import { REGISTER_DEVICE_PATH, VEND_PATH, VendingApi } from "./constructs/vending-api.ts";
import { UNSCOPABLE_IOT_RESOURCES, WILDCARD_RESOURCE_ALLOW_LIST } from "./iam-allow-list.ts";
import { readConcurrencySettings, reserveConcurrency } from "./lambda-settings.ts";
import { COAP_GATEWAY_OUTPUTS, PROVISIONING_OUTPUTS } from "./outputs.ts";

/** Settings of {@link ProvisioningStack}: the registry's resources come in by reference. */
export type ProvisioningStackProps = StackProps & {
  /** Prefix of the export names (`{exportPrefix}-VendApiUrl`, …). */
  exportPrefix: string;
  table: ITable;
  tableEncryptionKey?: IKey;
  /** Device-user bindings (the registry stack's; same key as the registry table). */
  bindingTable: ITable;
  /** The phone API's throttling and user pool. */
  phone: PhoneApiConfig;
  registryKeySecret: ISecret;
  registryKeySecretName: string;
  productSecretPrefix: string;
  productSecretArnPattern: string;
  api: VendingApiConfig;
  /** Every thing name starts with this (lib/config.ts `thingNamePrefix`); `""`: any thing. */
  thingNamePrefix?: string;
  /** The account's AWS IoT quotas (lib/config.ts `iotQuotas`); they size the provisioning budget. */
  iotQuotas?: IotQuotas;
  /** Reserved concurrency of the custom authorizer (lib/config.ts); unset: none. */
  authorizerReservedConcurrency?: number;
  /** Email address the CloudWatch alarms notify (lib/config.ts `alarmEmail`); unset: no SNS topic. */
  alarmEmail?: string;
  /** The CoAP gateway (lib/config.ts `coapGateway`); absent: none. `vpcId`: an existing VPC. */
  coapGateway?: { vpcId?: string };
  logRetention: RetentionDays;
  /** Dev only: delete the log groups with the stack. */
  destroyOnRemoval?: boolean;
};

/**
 * The stateless stack: the device policy, the vend Lambda and the vending API, JITR (topic rule,
 * Lambda, dead-letter queue), the role AWS IoT provisions with and the JITP template, and fleet
 * provisioning by claim (template, pre-provisioning hook, claim policy; the commit's topic rule,
 * Lambda and dead-letter queue), and certificate rotation over MQTT (topic rule, Lambda, dead-letter
 * queue), and devices born with a secret (the AWS IoT custom authorizer with its Lambda and domain
 * configuration; dynamic registration on the vending API). It holds no device data (the registry
 * stack does), but the device
 * policy is attached to every provisioned certificate and the claim policy to the operator's claim
 * certificates, so CloudFormation cannot delete them while those exist.
 */
export class ProvisioningStack extends Stack {
  /** The shared IoT policy. */
  readonly devicePolicy: DevicePolicy;
  /** The vend Lambda. */
  readonly vendFunction: VendFunction;
  /** The vending API. */
  readonly vendingApi: VendingApi;
  /** Just-in-time registration: rule, Lambda, dead-letter queue. */
  readonly jitr: JitrRegistration;
  /** The role AWS IoT assumes to run the JITP and fleet provisioning templates. */
  readonly provisioningRole: IotProvisioningRole;
  /** The JITP template. */
  readonly jitp: JitpProvisioning;
  /** Fleet provisioning by claim: template, hook, claim policy. */
  readonly fleet: FleetProvisioning;
  /** Bulk provisioning: the parameter-file bucket and the registration task role. */
  readonly bulk: BulkProvisioning;
  /** Fleet provisioning's commit on the device's first connection: rule, Lambda, dead-letter queue. */
  readonly fleetCommit: FleetCommit;
  /** Certificate rotation over MQTT: rule, Lambda, dead-letter queue. */
  readonly certificateRotation: CertificateRotation;
  /** Dynamic registration over HTTPS (`POST /auth/register/device` on the vending API). */
  readonly registerDevice: RegisterDeviceFunction;
  /** The custom authorizer for devices born with a secret: Lambda, authorizer, domain configuration. */
  readonly secretDeviceAuthorizer: SecretDeviceAuthorizer;
  /** Device-user binding, device side: token reports and resets (topic rules, Lambda, dead-letter queue). */
  readonly bindingReport: BindingReport;
  /** Device-user binding, phone side: users, the phone API and its Lambda. */
  readonly phoneApi: PhoneApi;
  /** CloudWatch alarms (dead letters, 5xx rate, errors, throttles, undo failures) and the dashboard. */
  readonly observability: Observability;
  /** The CoAP-over-DTLS gateway (ECS Fargate behind a UDP NLB), when context `coapGateway=true`. */
  readonly coapGateway?: CoapGateway;

  constructor(scope: Construct, id: string, props: ProvisioningStackProps) {
    const {
      exportPrefix,
      table,
      tableEncryptionKey,
      bindingTable,
      phone,
      registryKeySecret,
      registryKeySecretName,
      productSecretPrefix,
      productSecretArnPattern,
      api,
      thingNamePrefix = "",
      iotQuotas,
      authorizerReservedConcurrency,
      alarmEmail,
      coapGateway,
      logRetention,
      destroyOnRemoval = false,
      ...stackProps
    } = props;
    super(scope, id, {
      description:
        "iot-onramp provisioning (stateless): device policy, certificate vending API, JITR, JITP, fleet provisioning, certificate rotation, custom authorizer and dynamic registration for devices born with a secret",
      ...stackProps,
    });
    const removalPolicy = destroyOnRemoval ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    // What every registry-backed construct below is given: the table (and its key), the secret
    // names the shared Lambda wiring reads, and the log settings.
    const registry = {
      table,
      ...(tableEncryptionKey ? { tableEncryptionKey } : {}),
      registryKeySecretName,
      productSecretPrefix,
      logRetention,
      removalPolicy,
    };
    // The secrets the functions that read them are allowed to read.
    const secretArns = { registryKeySecretArn: registryKeySecret.secretArn, productSecretArnPattern };
    // Reserved concurrency per function and JITR's consumers (context; lib/lambda-settings.ts).
    const concurrency = readConcurrencySettings(this.node, authorizerReservedConcurrency, iotQuotas);

    this.devicePolicy = new DevicePolicy(this, "DevicePolicy");
    this.vendFunction = new VendFunction(this, "Vend", {
      ...registry,
      registryKeySecret,
      productSecretArnPattern,
      devicePolicyNames: [this.devicePolicy.policyName],
      thingNamePrefix,
      ...(iotQuotas ? { iotQuotas } : {}),
    });
    this.registerDevice = new RegisterDeviceFunction(this, "RegisterDevice", {
      ...registry,
      ...secretArns,
    });
    this.vendingApi = new VendingApi(this, "VendingApi", {
      ...api,
      handler: this.vendFunction.function,
      registrationHandler: this.registerDevice.function,
      logRetention,
      removalPolicy,
    });

    this.jitr = new JitrRegistration(this, "Jitr", {
      ...registry,
      devicePolicyNames: [this.devicePolicy.policyName],
      thingNamePrefix,
      consumers: concurrency.jitr,
      ...(iotQuotas ? { iotQuotas } : {}),
      ...(concurrency.reserved.jitr !== undefined
        ? { reservedConcurrentExecutions: concurrency.reserved.jitr }
        : {}),
    });
    this.provisioningRole = new IotProvisioningRole(this, "IotProvisioningRole", {
      devicePolicyNames: [this.devicePolicy.policyName],
      thingNamePrefix,
    });
    this.jitp = new JitpProvisioning(this, "Jitp", { provisioningRole: this.provisioningRole.role });
    this.fleet = new FleetProvisioning(this, "Fleet", {
      ...registry,
      registryKeySecret,
      productSecretArnPattern,
      thingNamePrefix,
      provisioningRole: this.provisioningRole.role,
    });
    this.bulk = new BulkProvisioning(this, "BulkProvisioning", {
      devicePolicyNames: [this.devicePolicy.policyName],
      thingNamePrefix,
      removalPolicy,
    });
    this.fleetCommit = new FleetCommit(this, "FleetCommit", {
      ...registry,
      thingNamePrefix,
    });
    this.certificateRotation = new CertificateRotation(this, "CertificateRotation", {
      ...registry,
      devicePolicyNames: [this.devicePolicy.policyName],
      thingNamePrefix,
    });

    this.secretDeviceAuthorizer = new SecretDeviceAuthorizer(this, "SecretDeviceAuthorizer", {
      ...registry,
      ...secretArns,
      authorizerName: secretDeviceAuthorizerName(exportPrefix),
      thingNamePrefix,
      ...(concurrency.reserved.authorizer !== undefined
        ? { reservedConcurrentExecutions: concurrency.reserved.authorizer }
        : {}),
    });

    this.bindingReport = new BindingReport(this, "BindingReport", {
      ...registry,
      bindingTable,
      thingNamePrefix,
    });
    this.phoneApi = new PhoneApi(this, "PhoneApi", {
      ...registry,
      bindingTable,
      rateLimit: phone.rateLimit,
      burstLimit: phone.burstLimit,
      executionLogLevel: api.executionLogLevel,
      ...(phone.existingUserPoolId ? { existingUserPoolId: phone.existingUserPoolId } : {}),
      ...(this.vendingApi.webAclArn ? { webAclArn: this.vendingApi.webAclArn } : {}),
    });

    reserveConcurrency(this.vendFunction.function, concurrency.reserved.vend);
    reserveConcurrency(this.fleet.hookFunction, concurrency.reserved.fleetHook);

    this.observability = new Observability(this, "Observability", {
      functions: [
        { label: "Vend", function: this.vendFunction.function, service: METRIC_SERVICES.vend },
        {
          label: "RegisterDevice",
          function: this.registerDevice.function,
          service: METRIC_SERVICES.registerDevice,
        },
        { label: "Jitr", function: this.jitr.function, service: METRIC_SERVICES.jitr },
        { label: "FleetHook", function: this.fleet.hookFunction, service: METRIC_SERVICES.fleetHook },
        { label: "FleetCommit", function: this.fleetCommit.function, service: METRIC_SERVICES.fleetCommit },
        {
          label: "Authorizer",
          function: this.secretDeviceAuthorizer.function,
          service: METRIC_SERVICES.authorizer,
        },
        { label: "Rotation", function: this.certificateRotation.function, service: METRIC_SERVICES.rotation },
        {
          label: "BindingReport",
          function: this.bindingReport.function,
          service: METRIC_SERVICES.bindingReport,
        },
        {
          label: "BindingApi",
          function: this.phoneApi.handler.function,
          service: METRIC_SERVICES.bindingApi,
        },
      ],
      deadLetterQueues: {
        Jitr: this.jitr.deadLetterQueue,
        FleetCommit: this.fleetCommit.deadLetterQueue,
        Rotation: this.certificateRotation.deadLetterQueue,
        BindingReport: this.bindingReport.deadLetterQueue,
      },
      apis: { Api: this.vendingApi.api, PhoneApi: this.phoneApi.api },
      dashboardName: `${exportPrefix}-provisioning`,
      ...(alarmEmail ? { alarmEmail } : {}),
    });

    // JITR's backlog alarm (lib/constructs/jitr.ts) notifies like the others.
    if (this.observability.topic) {
      const action = new SnsAction(this.observability.topic);
      this.jitr.backlogAlarm.addAlarmAction(action);
      this.jitr.backlogAlarm.addOkAction(action);
    }

    this.acknowledgeNagFindings(api, productSecretPrefix, thingNamePrefix);

    if (coapGateway) {
      this.coapGateway = new CoapGateway(this, "CoapGateway", {
        ...registry,
        ...secretArns,
        thingNamePrefix,
        ...(coapGateway.vpcId
          ? { vpc: Vpc.fromLookup(this, "CoapGatewayVpc", { vpcId: coapGateway.vpcId }) }
          : {}),
      });
      new CfnOutput(this, COAP_GATEWAY_OUTPUTS.dnsName, {
        value: this.coapGateway.loadBalancer.loadBalancerDnsName,
        description: "CoAP over DTLS endpoint of NB-IoT devices: coaps://<this name>:5684 (UDP)",
        exportName: `${exportPrefix}-${COAP_GATEWAY_OUTPUTS.dnsName}`,
      });
      new CfnOutput(this, COAP_GATEWAY_OUTPUTS.port, {
        value: String(COAP_PORT),
        description: "UDP port of the CoAP gateway's NLB listener",
        exportName: `${exportPrefix}-${COAP_GATEWAY_OUTPUTS.port}`,
      });
    }

    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description, exportName: `${exportPrefix}-${id}` });
    output(
      PROVISIONING_OUTPUTS.bulkProvisioningBucketName,
      this.bulk.bucket.bucketName,
      "S3 bucket of bulk provisioning parameter files and run reports (onramp bulk provision --aws)",
    );
    output(
      PROVISIONING_OUTPUTS.bulkRegistrationRoleArn,
      this.bulk.role.roleArn,
      "Role AWS IoT assumes to run bulk registration tasks (StartThingRegistrationTask roleArn)",
    );
    output(PROVISIONING_OUTPUTS.vendApiUrl, this.vendingApi.api.url, "Base URL of the vending API (stage)");
    output(
      PROVISIONING_OUTPUTS.vendEndpointUrl,
      this.vendingApi.api.urlForPath(VEND_PATH),
      "POST here to vend a certificate (openapi.yaml)",
    );
    output(
      PROVISIONING_OUTPUTS.devicePolicyName,
      this.devicePolicy.policyName,
      "IoT policy attached to every device",
    );
    output(
      PROVISIONING_OUTPUTS.dataEndpointHint,
      Fn.join("", ["aws iot describe-endpoint --endpoint-type iot:Data-ATS --region ", Aws.REGION]),
      "The MQTT data endpoint has no CloudFormation attribute: this command prints it",
    );
    if (this.vendingApi.domain) {
      output(
        PROVISIONING_OUTPUTS.customDomainTarget,
        this.vendingApi.domain.domainNameAliasDomainName,
        "Point the custom domain (CNAME or alias) at this regional API Gateway name",
      );
    }
    output(
      PROVISIONING_OUTPUTS.jitrFunctionName,
      this.jitr.function.functionName,
      "JITR Lambda (invoked by the topic rule on $aws/events/certificates/registered/+)",
    );
    output(
      PROVISIONING_OUTPUTS.jitrDeadLetterQueueUrl,
      this.jitr.deadLetterQueue.queueUrl,
      "SQS queue of JITR events the rule could not deliver or the Lambda failed after retries",
    );
    output(
      PROVISIONING_OUTPUTS.jitpRoleArn,
      this.provisioningRole.role.roleArn,
      "Role AWS IoT assumes to run JITP and fleet templates (onramp ca register --role-arn)",
    );
    output(
      PROVISIONING_OUTPUTS.jitpTemplateName,
      this.jitp.templateName,
      "JITP provisioning template (registrationConfig.templateName of a CA)",
    );
    output(
      PROVISIONING_OUTPUTS.fleetTemplateName,
      this.fleet.templateName,
      "Fleet provisioning template: devices publish to $aws/provisioning-templates/<name>/provision/json",
    );
    output(
      PROVISIONING_OUTPUTS.claimPolicyName,
      this.fleet.claimPolicyName,
      "IoT policy to attach to fleet provisioning claim certificates",
    );
    output(
      PROVISIONING_OUTPUTS.preProvisioningHookFunctionName,
      this.fleet.hookFunction.functionName,
      "Fleet provisioning pre-provisioning hook Lambda",
    );
    output(
      PROVISIONING_OUTPUTS.fleetCommitFunctionName,
      this.fleetCommit.function.functionName,
      "Fleet provisioning commit Lambda (invoked by the topic rule on $aws/events/presence/connected/+)",
    );
    output(
      PROVISIONING_OUTPUTS.fleetCommitDeadLetterQueueUrl,
      this.fleetCommit.deadLetterQueue.queueUrl,
      "SQS queue of connection events the commit rule could not deliver or the Lambda failed after retries",
    );
    output(
      PROVISIONING_OUTPUTS.phoneApiUrl,
      this.phoneApi.api.url,
      "Base URL of the phone API (device-user binding)",
    );
    output(
      PROVISIONING_OUTPUTS.phoneUserPoolId,
      this.phoneApi.userPool.userPoolId,
      "Cognito user pool of the phone API's users (ID tokens in Authorization)",
    );
    if (this.phoneApi.userPoolClient) {
      output(
        PROVISIONING_OUTPUTS.phoneUserPoolClientId,
        this.phoneApi.userPoolClient.userPoolClientId,
        "Cognito app client id of the phone app (public client, SRP sign-in)",
      );
    }
    output(
      PROVISIONING_OUTPUTS.bindingReportDeadLetterQueueUrl,
      this.bindingReport.deadLetterQueue.queueUrl,
      "SQS queue of token reports and resets the binding rules or Lambda could not process",
    );
    output(
      PROVISIONING_OUTPUTS.registerDeviceUrl,
      this.vendingApi.api.urlForPath(REGISTER_DEVICE_PATH),
      "POST here (form-urlencoded) for dynamic registration of a pre-registered device, Alibaba-style",
    );
    output(
      PROVISIONING_OUTPUTS.registerDeviceFunctionName,
      this.registerDevice.function.functionName,
      "Dynamic registration Lambda (POST /auth/register/device)",
    );
    output(
      PROVISIONING_OUTPUTS.registerDeviceLogGroupName,
      this.registerDevice.logGroup.logGroupName,
      "Logs of the dynamic registration Lambda (one line per refusal or registration, never the form)",
    );
    const authorizer = this.secretDeviceAuthorizer;
    output(
      PROVISIONING_OUTPUTS.customAuthorizerName,
      authorizer.authorizer.ref,
      "AWS IoT custom authorizer of devices born with a secret (the optional ?x-amz-customauthorizer-name= of the MQTT username)",
    );
    output(
      PROVISIONING_OUTPUTS.customAuthorizerFunctionName,
      authorizer.function.functionName,
      "Custom authorizer Lambda (MQTT username/password)",
    );
    output(
      PROVISIONING_OUTPUTS.customAuthorizerLogGroupName,
      authorizer.logGroup.logGroupName,
      "Logs of the custom authorizer (one line per decision with the reason; never the password)",
    );
    output(
      PROVISIONING_OUTPUTS.secretDeviceDomainConfigurationName,
      authorizer.domainConfiguration.ref,
      "Domain configuration (AWS-managed domain) whose default authorizer is the custom authorizer",
    );
    output(
      PROVISIONING_OUTPUTS.secretDeviceEndpointHint,
      Fn.join("", [
        "aws iot describe-domain-configuration --domain-configuration-name ",
        authorizer.domainConfiguration.ref,
        " --query domainName --output text --region ",
        Aws.REGION,
      ]),
      "The host devices born with a secret connect to (port 443, ALPN mqtt, SNI = that host) has no CloudFormation attribute: this command prints it",
    );
    output(
      PROVISIONING_OUTPUTS.vendLogGroupName,
      this.vendFunction.logGroup.logGroupName,
      "Logs of the vend Lambda",
    );
    output(
      PROVISIONING_OUTPUTS.vendApiAccessLogGroupName,
      this.vendingApi.accessLogs.logGroupName,
      "Access logs of the vending API (one JSON line per request)",
    );
    output(PROVISIONING_OUTPUTS.jitrLogGroupName, this.jitr.logGroup.logGroupName, "Logs of the JITR Lambda");
    output(
      PROVISIONING_OUTPUTS.preProvisioningHookLogGroupName,
      this.fleet.hookLogGroup.logGroupName,
      "Logs of the pre-provisioning hook (one line per decision, with the reason)",
    );
    output(
      PROVISIONING_OUTPUTS.fleetCommitLogGroupName,
      this.fleetCommit.logGroup.logGroupName,
      "Logs of the fleet provisioning commit Lambda (one line per commit)",
    );
    output(
      PROVISIONING_OUTPUTS.certificateRotationFunctionName,
      this.certificateRotation.function.functionName,
      "Certificate rotation Lambda (invoked by the topic rule on things/+/certificates/rotate)",
    );
    output(
      PROVISIONING_OUTPUTS.certificateRotationDeadLetterQueueUrl,
      this.certificateRotation.deadLetterQueue.queueUrl,
      "SQS queue of rotation requests the rule could not deliver or the Lambda failed after retries",
    );
    output(
      PROVISIONING_OUTPUTS.certificateRotationLogGroupName,
      this.certificateRotation.logGroup.logGroupName,
      "Logs of the certificate rotation Lambda (one line per rotation, ids only)",
    );
  }

  /**
   * cdk-nag acknowledgements (cdk-nag 3: `Validations.acknowledge`, one per finding). Each says why
   * the finding does not apply; see {@link nagAcknowledgements}.
   */
  private acknowledgeNagFindings(
    api: VendingApiConfig,
    productSecretPrefix: string,
    thingNamePrefix: string,
  ): void {
    const targets: Record<NagTarget, IConstruct> = {
      role: this.vendFunction.role,
      function: this.vendFunction.function,
      api: this.vendingApi.api,
      jitrRole: this.jitr.role,
      jitrFunction: this.jitr.function,
      jitrQueue: this.jitr.deadLetterQueue,
      provisioningRole: this.provisioningRole.role,
      hookRole: this.fleet.hookRole,
      hookFunction: this.fleet.hookFunction,
      fleetCommitRole: this.fleetCommit.role,
      fleetCommitFunction: this.fleetCommit.function,
      fleetCommitQueue: this.fleetCommit.deadLetterQueue,
      rotationRole: this.certificateRotation.role,
      rotationFunction: this.certificateRotation.function,
      rotationQueue: this.certificateRotation.deadLetterQueue,
      registerRole: this.registerDevice.role,
      registerFunction: this.registerDevice.function,
      authorizerRole: this.secretDeviceAuthorizer.role,
      authorizerFunction: this.secretDeviceAuthorizer.function,
      bindingReportRole: this.bindingReport.role,
      bindingReportFunction: this.bindingReport.function,
      bindingReportQueue: this.bindingReport.deadLetterQueue,
      phoneApiFunction: this.phoneApi.handler.function,
      phoneApi: this.phoneApi.api,
      phoneUsers: this.phoneApi.userPool,
    };
    for (const ack of nagAcknowledgements(this, api, productSecretPrefix, thingNamePrefix)) {
      Validations.of(targets[ack.on]).acknowledge({ id: ack.id, reason: ack.reason });
    }
  }
}

/**
 * Where an acknowledgement goes: the vend role, function or REST API (`role`, `function`, `api`),
 * the JITR role, function or dead-letter queue, the IoT provisioning role, the hook role or
 * function, the fleet commit role, function or dead-letter queue, the certificate rotation role,
 * function or dead-letter queue, the dynamic registration role or function, the custom authorizer
 * role or function, the binding report role, function or dead-letter queue, the phone API's
 * function, REST API or user pool.
 */
export type NagTarget =
  | "role"
  | "function"
  | "api"
  | "jitrRole"
  | "jitrFunction"
  | "jitrQueue"
  | "provisioningRole"
  | "hookRole"
  | "hookFunction"
  | "fleetCommitRole"
  | "fleetCommitFunction"
  | "fleetCommitQueue"
  | "rotationRole"
  | "rotationFunction"
  | "rotationQueue"
  | "registerRole"
  | "registerFunction"
  | "authorizerRole"
  | "authorizerFunction"
  | "bindingReportRole"
  | "bindingReportFunction"
  | "bindingReportQueue"
  | "phoneApiFunction"
  | "phoneApi"
  | "phoneUsers";

/**
 * The custom authorizer's name: `{prefix}-SecretDevices` (the stack prefix keeps deployments with
 * different prefixes apart). A device may name it in `?x-amz-customauthorizer-name=`.
 */
export function secretDeviceAuthorizerName(exportPrefix: string): string {
  return `${exportPrefix}-SecretDevices`;
}

/** A cdk-nag finding acknowledged on one construct of the stack, with its reason. */
export type NagAcknowledgement = { on: NagTarget; id: string; reason: string };

const IAM5 = (resource: string) => `AwsSolutions-IAM5[Resource::${resource}]`;

/** An ARN prefix as cdk-nag prints it: unresolved partition/region/account become `<AWS::…>`. */
function nagArnPrefix(stack: Stack, service: string): string {
  const part = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);
  return `arn:${part(stack.partition, "Partition")}:${service}:${part(stack.region, "Region")}:${part(stack.account, "AccountId")}`;
}

/** The allow-list's reasons for some actions, quoted in an IAM5 acknowledgement of `Resource::*`. */
function allowListReasons(actions?: readonly string[]): string {
  return WILDCARD_RESOURCE_ALLOW_LIST.filter((g) => !actions || actions.includes(g.action))
    .map((g) => `${g.action} (${g.reason})`)
    .join("; ");
}

/** The cdk-nag findings this stack accepts, each with the reason it does not apply. */
export function nagAcknowledgements(
  stack: Stack,
  api: VendingApiConfig,
  productSecretPrefix: string,
  thingNamePrefix = "",
): NagAcknowledgement[] {
  const iotArn = nagArnPrefix(stack, "iot");
  const things = `thing/${thingNamePrefix}*`;
  const scopedIot = `IoT things and certificates of this account and region only. cert/*: ${UNSCOPABLE_IOT_RESOURCES.certificate.reason}. ${
    thingNamePrefix
      ? `${things}: things are limited to the configured thing-name prefix (context thingNamePrefix).`
      : `thing/*: ${UNSCOPABLE_IOT_RESOURCES.thing.reason}.`
  }`;
  const runtime =
    "nodejs22.x (LTS, supported) is pinned on purpose: the bundle targets node22 (lib/bundling.ts LAMBDA_RUNTIME) and the suite runs on it; moving to nodejs24.x is a deliberate change of both.";
  const registerThingOnly = `Only iot:RegisterThing, which has no resource type in the Service Authorization Reference (lib/iam-allow-list.ts: ${allowListReasons(["iot:RegisterThing"])}).`;
  const certificatesOnly = `IoT certificates of this account and region only, no thing grant. cert/*: ${UNSCOPABLE_IOT_RESOURCES.certificate.reason}.`;
  const productSecretsAck = {
    id: IAM5(`${nagArnPrefix(stack, "secretsmanager")}:secret:${productSecretPrefix}*`),
    reason: `Product secrets are created later by the operator CLI under the ${productSecretPrefix} prefix; the grant is GetSecretValue only, on that prefix.`,
  };
  const acks: NagAcknowledgement[] = [
    { on: "role", id: IAM5(`${iotArn}:${things}`), reason: scopedIot },
    { on: "role", id: IAM5(`${iotArn}:cert/*`), reason: scopedIot },
    {
      on: "role",
      id: IAM5(`${iotArn}:thinggroup/onramp-product-*`),
      reason:
        "The direct provisioning path's product thing groups (onramp-product-{productKey}, lambdas/core/registry/register-device-thing.ts), each carrying its product's device policy: products are created by the operator CLI after deployment, so their groups cannot be named in advance; the grant is limited to this app's group-name prefix.",
    },
    { on: "role", ...productSecretsAck },
    {
      on: "role",
      id: IAM5("*"),
      reason: `Only actions without a resource type in the Service Authorization Reference, each on the allow-list of lib/iam-allow-list.ts: ${allowListReasons()}.`,
    },
    { on: "function", id: "AwsSolutions-L1", reason: runtime },
    {
      on: "jitrRole",
      id: IAM5(`${iotArn}:${things}`),
      reason: `${scopedIot} JITR provisions whichever registered device connects, like the vend path.`,
    },
    {
      on: "jitrRole",
      id: IAM5(`${iotArn}:cert/*`),
      reason: `${scopedIot} JITR activates or revokes whichever certificate AWS IoT auto-registered.`,
    },
    { on: "jitrRole", id: IAM5("*"), reason: registerThingOnly },
    { on: "jitrFunction", id: "AwsSolutions-L1", reason: runtime },
    {
      on: "jitrQueue",
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is itself the dead-letter queue of the JITR work queue (redrive after its maximum receives) and of the JITR topic rule (error action); a dead-letter queue of a dead-letter queue would only move the same messages again.",
    },
    {
      on: "provisioningRole",
      id: IAM5(`${iotArn}:${things}`),
      reason: `${scopedIot} AWS IoT assumes this role to run the JITP and fleet templates, which create the thing named after whichever device is being provisioned.`,
    },
    {
      on: "provisioningRole",
      id: IAM5(`${iotArn}:cert/*`),
      reason: `${scopedIot} The JITP and fleet templates activate and attach the certificate AWS IoT registered or created for the device.`,
    },
    { on: "provisioningRole", id: IAM5("*"), reason: registerThingOnly },
    {
      on: "hookRole",
      id: IAM5(`${iotArn}:cert/*`),
      reason: `${certificatesOnly} The hook settles a stale claim: it inspects the certificate that claim recorded and commits it, or detaches, revokes and deletes it.`,
    },
    {
      on: "hookRole",
      id: productSecretsAck.id,
      reason: `${productSecretsAck.reason} The hook reads one only for a re-provisioning's proof.`,
    },
    { on: "hookFunction", id: "AwsSolutions-L1", reason: runtime },
    {
      on: "fleetCommitRole",
      id: IAM5(`${iotArn}:cert/*`),
      reason: `${certificatesOnly} The commit inspects whichever certificate fleet provisioning created for the connecting device, and destroys the one it replaces.`,
    },
    { on: "fleetCommitFunction", id: "AwsSolutions-L1", reason: runtime },
    {
      on: "fleetCommitQueue",
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is itself the dead-letter queue of the fleet commit topic rule (error action) and of the commit Lambda (on-failure destination); a dead-letter queue of a dead-letter queue would only move the same messages again.",
    },
    {
      on: "rotationRole",
      id: IAM5(`${iotArn}:${things}`),
      reason: `${scopedIot} The rotation re-runs the product's template (RegisterThing) for the device's own thing, named after its serial, to attach the new certificate.`,
    },
    {
      on: "rotationRole",
      id: IAM5(`${iotArn}:cert/*`),
      reason: `${scopedIot} The rotation creates, attaches and activates the device's new certificate, and destroys it again when the rotation fails.`,
    },
    {
      on: "rotationRole",
      id: IAM5("*"),
      reason: `Only actions without a resource type in the Service Authorization Reference, each on the allow-list of lib/iam-allow-list.ts: ${allowListReasons(ROTATION_ACTIONS_WITHOUT_RESOURCE_TYPE)}.`,
    },
    ...rotationAnswerTopics(thingNamePrefix).map((topic) => ({
      on: "rotationRole" as const,
      id: IAM5(`${iotArn}:topic/${topic}`),
      reason: `iot:Publish only, on one answer topic of certificate rotation under every device's own things/{thingName}/ (${
        thingNamePrefix ? `things limited to the prefix ${thingNamePrefix}` : "any thing"
      }): the device that asked is known only from the request (topic(2) in the rule), and the device policy lets each device receive only its own things/{thingName}/* topics.`,
    })),
    { on: "rotationFunction", id: "AwsSolutions-L1", reason: runtime },
    {
      on: "registerRole",
      id: productSecretsAck.id,
      reason: `${productSecretsAck.reason} Dynamic registration checks the request's signature with the product secret of the productKey it names.`,
    },
    { on: "registerFunction", id: "AwsSolutions-L1", reason: runtime },
    {
      on: "authorizerRole",
      id: productSecretsAck.id,
      reason: `${productSecretsAck.reason} The authorizer derives a device's secret from its product's secret, or checks an EnOS SecureMode 3 activation login against it.`,
    },
    {
      on: "authorizerRole",
      id: IAM5(`${iotArn}:${things}`),
      reason: `DescribeThing and CreateThing only (a secret-born device's first login makes it a thing named after its serial), on things of this account and region. ${
        thingNamePrefix
          ? `${things}: things are limited to the configured thing-name prefix (context thingNamePrefix).`
          : `thing/*: ${UNSCOPABLE_IOT_RESOURCES.thing.reason}.`
      }`,
    },
    { on: "authorizerFunction", id: "AwsSolutions-L1", reason: runtime },
    {
      on: "rotationQueue",
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is itself the dead-letter queue of the certificate rotation topic rule (error action) and of the rotation Lambda (on-failure destination); a dead-letter queue of a dead-letter queue would only move the same messages again.",
    },
    {
      on: "api",
      id: "AwsSolutions-APIG4",
      reason:
        "Devices have no AWS identity or token before provisioning: each vend request is authenticated by the HMAC-SHA256 signature in the body (per-device or per-product secret, timestamp, single-use nonce), each dynamic registration by the HMAC sign of its form with the product secret (Alibaba's scheme; register once), both verified by the Lambda against the registry.",
    },
    {
      on: "api",
      id: "AwsSolutions-COG4",
      reason:
        "No Cognito users: the callers are devices that authenticate by HMAC signature in the body (see APIG4).",
    },
  ];
  acks.push(...bindingAcknowledgements(iotArn, runtime, api, thingNamePrefix));
  if (api.waf.mode === "off") {
    acks.push({
      on: "api",
      id: "AwsSolutions-APIG3",
      reason:
        "WAF was turned off on purpose (context waf=false; the default creates a web ACL with a per-source-IP rate limit). Without it the API relies on stage throttling, body validation, signature checks and single-use nonces.",
    });
  }
  if (api.executionLogLevel === "OFF") {
    acks.push({
      on: "api",
      id: "AwsSolutions-APIG6",
      reason:
        "Access logs are on for every request. Execution logs need the account-wide API Gateway CloudWatch role, so they are opt-in (context apiExecutionLogLevel=ERROR|INFO; apiCloudWatchRole=true creates the role).",
    });
  }
  if (api.createCloudWatchRole) {
    acks.push({
      on: "api",
      id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
      reason:
        "The account-level API Gateway logging role uses AmazonAPIGatewayPushToCloudWatchLogs, the policy API Gateway documents for it; only created on request (apiCloudWatchRole=true).",
    });
  }
  return acks;
}

/** The findings the device-user binding constructs accept (issue 11). */
function bindingAcknowledgements(
  iotArn: string,
  runtime: string,
  api: VendingApiConfig,
  thingNamePrefix: string,
): NagAcknowledgement[] {
  const acks: NagAcknowledgement[] = [
    { on: "bindingReportFunction", id: "AwsSolutions-L1", reason: runtime },
    { on: "phoneApiFunction", id: "AwsSolutions-L1", reason: runtime },
    {
      on: "bindingReportRole",
      id: IAM5("*"),
      reason: `Only iot:DescribeEndpoint, which has no resource type in the Service Authorization Reference (lib/iam-allow-list.ts: ${allowListReasons(["iot:DescribeEndpoint"])}).`,
    },
    ...bindingAnswerTopics(thingNamePrefix).map((topic) => ({
      on: "bindingReportRole" as const,
      id: IAM5(`${iotArn}:topic/${topic}`),
      reason: `iot:Publish only, on one answer topic of device-user binding (match_reply / reset_reply) under every device's own topic space: the device that reported is known only from the topic (the rule passes it), and the device policies let each device receive only its own topics (/sys/{productKey}/{deviceName}/* or things/{thingName}/*).`,
    })),
    {
      on: "bindingReportQueue",
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is itself the dead-letter queue of the binding topic rules (error action) and of the report Lambda (on-failure destination); a dead-letter queue of a dead-letter queue would only move the same messages again.",
    },
    {
      on: "phoneUsers",
      id: "AwsSolutions-COG2",
      reason:
        "Phone-app users of a consumer device: MFA is offered (TOTP, optional) but not required, which would turn away ordinary households. A deployment that wants it required brings its own user pool (context phoneUserPoolId).",
    },
    {
      on: "phoneUsers",
      id: "AwsSolutions-COG8",
      reason:
        "The Plus feature plan (threat protection) is billed per monthly active user; a deployment that wants it brings its own user pool (context phoneUserPoolId). Binding itself is protected by one-time tokens, a per-user limit on failed binds and the stage throttle.",
    },
  ];
  if (api.waf.mode === "off") {
    acks.push({
      on: "phoneApi",
      id: "AwsSolutions-APIG3",
      reason:
        "WAF was turned off on purpose (context waf=false); every route still needs a Cognito ID token and the stage is throttled.",
    });
  }
  if (api.executionLogLevel === "OFF") {
    acks.push({
      on: "phoneApi",
      id: "AwsSolutions-APIG6",
      reason:
        "Access logs are on for every request. Execution logs follow the vending API's opt-in setting (context apiExecutionLogLevel), since they need the account-wide API Gateway CloudWatch role.",
    });
  }
  return acks;
}
