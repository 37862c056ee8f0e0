import { Aws, CfnOutput, Fn, RemovalPolicy, Stack, type StackProps, Token, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import type { VendingApiConfig } from "./config.ts";
import { DevicePolicy } from "./constructs/device-policy.ts";
import { VendFunction } from "./constructs/vend-function.ts";
import { VEND_PATH, VendingApi } from "./constructs/vending-api.ts";
import { WILDCARD_RESOURCE_ALLOW_LIST } from "./iam-allow-list.ts";

/** Settings of {@link ProvisioningStack}: the registry's resources come in by reference. */
export type ProvisioningStackProps = StackProps & {
  /** Prefix of the export names (`{exportPrefix}-VendApiUrl`, …). */
  exportPrefix: string;
  table: ITable;
  tableEncryptionKey?: IKey;
  registryKeySecret: ISecret;
  registryKeySecretName: string;
  productSecretPrefix: string;
  productSecretArnPattern: string;
  api: VendingApiConfig;
  logRetention: RetentionDays;
  /** Dev only: delete the log groups with the stack. */
  destroyOnRemoval?: boolean;
};

/**
 * The stateless stack: the device policy, the vend Lambda and the vending API. It holds no device
 * data (the registry stack does), but the device policy is attached to every provisioned
 * certificate, so CloudFormation cannot delete it while devices exist. JITR/JITP and fleet
 * provisioning constructs join this stack once their handlers exist.
 */
export class ProvisioningStack extends Stack {
  /** The shared IoT policy. */
  readonly devicePolicy: DevicePolicy;
  /** The vend Lambda. */
  readonly vendFunction: VendFunction;
  /** The vending API. */
  readonly vendingApi: VendingApi;

  constructor(scope: Construct, id: string, props: ProvisioningStackProps) {
    const {
      exportPrefix,
      table,
      tableEncryptionKey,
      registryKeySecret,
      registryKeySecretName,
      productSecretPrefix,
      productSecretArnPattern,
      api,
      logRetention,
      destroyOnRemoval = false,
      ...stackProps
    } = props;
    super(scope, id, {
      description: "iot-onramp provisioning (stateless): device policy, certificate vending API",
      ...stackProps,
    });
    const removalPolicy = destroyOnRemoval ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;

    this.devicePolicy = new DevicePolicy(this, "DevicePolicy");
    this.vendFunction = new VendFunction(this, "Vend", {
      table,
      ...(tableEncryptionKey ? { tableEncryptionKey } : {}),
      registryKeySecret,
      registryKeySecretName,
      productSecretPrefix,
      productSecretArnPattern,
      devicePolicyNames: [this.devicePolicy.policyName],
      logRetention,
      removalPolicy,
    });
    this.vendingApi = new VendingApi(this, "VendingApi", {
      ...api,
      handler: this.vendFunction.function,
      logRetention,
      removalPolicy,
    });

    this.acknowledgeNagFindings(api, productSecretPrefix);

    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description, exportName: `${exportPrefix}-${id}` });
    output("VendApiUrl", this.vendingApi.api.url, "Base URL of the vending API (stage)");
    output(
      "VendEndpointUrl",
      this.vendingApi.api.urlForPath(VEND_PATH),
      "POST here to vend a certificate (openapi.yaml)",
    );
    output("DevicePolicyName", this.devicePolicy.policyName, "IoT policy attached to every device");
    output(
      "DataEndpointHint",
      Fn.join("", ["aws iot describe-endpoint --endpoint-type iot:Data-ATS --region ", Aws.REGION]),
      "The MQTT data endpoint has no CloudFormation attribute: this command prints it",
    );
    if (this.vendingApi.domain) {
      output(
        "CustomDomainTarget",
        this.vendingApi.domain.domainNameAliasDomainName,
        "Point the custom domain (CNAME or alias) at this regional API Gateway name",
      );
    }
  }

  /**
   * cdk-nag acknowledgements (cdk-nag 3: `Validations.acknowledge`, one per finding). Each says why
   * the finding does not apply; see {@link nagAcknowledgements}.
   */
  private acknowledgeNagFindings(api: VendingApiConfig, productSecretPrefix: string): void {
    const targets = {
      role: this.vendFunction.role,
      function: this.vendFunction.function,
      api: this.vendingApi.api,
    };
    for (const ack of nagAcknowledgements(this, api, productSecretPrefix)) {
      Validations.of(targets[ack.on]).acknowledge({ id: ack.id, reason: ack.reason });
    }
  }
}

/** A cdk-nag finding acknowledged on the vend role, the vend function or the REST API, with its reason. */
export type NagAcknowledgement = { on: "role" | "function" | "api"; id: string; reason: string };

const IAM5 = (resource: string) => `AwsSolutions-IAM5[Resource::${resource}]`;

/** An ARN prefix as cdk-nag prints it: unresolved partition/region/account become `<AWS::…>`. */
function nagArnPrefix(stack: Stack, service: string): string {
  const part = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);
  return `arn:${part(stack.partition, "Partition")}:${service}:${part(stack.region, "Region")}:${part(stack.account, "AccountId")}`;
}

/** The cdk-nag findings this stack accepts, each with the reason it does not apply. */
export function nagAcknowledgements(
  stack: Stack,
  api: VendingApiConfig,
  productSecretPrefix: string,
): NagAcknowledgement[] {
  const iotArn = nagArnPrefix(stack, "iot");
  const scopedIot =
    "IoT thing names are device serial numbers and certificate ids are created per request, so thing and certificate actions are scoped to thing/* and cert/* of this account and region.";
  const acks: NagAcknowledgement[] = [
    { on: "role", id: IAM5(`${iotArn}:thing/*`), reason: scopedIot },
    { on: "role", id: IAM5(`${iotArn}:cert/*`), reason: scopedIot },
    {
      on: "role",
      id: IAM5(`${nagArnPrefix(stack, "secretsmanager")}:secret:${productSecretPrefix}*`),
      reason: `Product secrets are created later by the operator CLI under the ${productSecretPrefix} prefix; the grant is GetSecretValue only, on that prefix.`,
    },
    {
      on: "role",
      id: IAM5("*"),
      reason: `Only actions without a resource type in the Service Authorization Reference, each on the allow-list of lib/iam-allow-list.ts: ${WILDCARD_RESOURCE_ALLOW_LIST.map((g) => `${g.action} (${g.reason})`).join("; ")}.`,
    },
    {
      on: "function",
      id: "AwsSolutions-L1",
      reason:
        "nodejs22.x (LTS, supported) is pinned on purpose: the bundle targets node22 (lib/bundling.ts LAMBDA_RUNTIME) and the suite runs on it; moving to nodejs24.x is a deliberate change of both.",
    },
    {
      on: "api",
      id: "AwsSolutions-APIG4",
      reason:
        "Devices have no AWS identity or token before provisioning: each request is authenticated by the HMAC-SHA256 signature in the body (per-device or per-product secret, timestamp, single-use nonce), verified by the Lambda against the registry.",
    },
    {
      on: "api",
      id: "AwsSolutions-COG4",
      reason:
        "No Cognito users: the callers are devices that authenticate by HMAC signature in the body (see APIG4).",
    },
  ];
  if (!api.wafWebAclArn) {
    acks.push({
      on: "api",
      id: "AwsSolutions-APIG3",
      reason:
        "WAF is optional (context wafWebAclArn associates an existing regional web ACL). Without it the API relies on stage throttling, body validation, signature checks and single-use nonces.",
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
