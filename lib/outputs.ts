/**
 * The names of the deployed stacks and of their CloudFormation outputs, in one place: the stacks
 * create their `CfnOutput`s with these ids and the `onramp` CLI reads a deployed stack's outputs by
 * the same keys (DescribeStacks → `Outputs[].OutputKey`). Renaming a value here renames the output
 * and its export (`{prefix}-{OutputKey}`), so treat the values as a public interface.
 *
 * This module has no CDK imports: the CLI can import it without loading aws-cdk-lib.
 */

/** Default prefix of the stack and export names (CDK context `prefix`, lib/config.ts). */
export const DEFAULT_PREFIX = "IotOnramp";

/** Stack name suffixes: the stacks are named `{prefix}-{suffix}`. */
export const STACK_SUFFIXES = {
  registry: "Registry",
  provisioning: "Provisioning",
} as const;

/** Names of the two stacks with a given prefix (`{prefix}-Registry`, `{prefix}-Provisioning`). */
export function stackNames(prefix: string = DEFAULT_PREFIX): { registry: string; provisioning: string } {
  return {
    registry: `${prefix}-${STACK_SUFFIXES.registry}`,
    provisioning: `${prefix}-${STACK_SUFFIXES.provisioning}`,
  };
}

/** Stack names with the default prefix: `IotOnramp-Registry` and `IotOnramp-Provisioning`. */
export const STACK_NAMES = stackNames(DEFAULT_PREFIX);

/** Output keys of the registry stack (`{prefix}-Registry`). */
export const REGISTRY_OUTPUTS = {
  /** DynamoDB table of the device registry. */
  tableName: "RegistryTableName",
  /** ARN of the registry table. */
  tableArn: "RegistryTableArn",
  /** Secrets Manager name prefix of the product secrets (`{prefix}{productKey}`). */
  productSecretPrefix: "ProductSecretPrefix",
  /** Secrets Manager name of the registry key. */
  registryKeySecretName: "RegistryKeySecretName",
  /** ARN of the registry key secret. */
  registryKeySecretArn: "RegistryKeySecretArn",
  /** DynamoDB table of device-user bindings (tokens, owners, audit records). */
  bindingTableName: "BindingTableName",
} as const;

/** Output keys of the provisioning stack (`{prefix}-Provisioning`). */
export const PROVISIONING_OUTPUTS = {
  /** Base URL of the vending API (stage). */
  vendApiUrl: "VendApiUrl",
  /** Full URL of the vend endpoint (POST). */
  vendEndpointUrl: "VendEndpointUrl",
  /** IoT policy attached to every device certificate. */
  devicePolicyName: "DevicePolicyName",
  /** A command that prints the MQTT data endpoint (it has no CloudFormation attribute). */
  dataEndpointHint: "DataEndpointHint",
  /** Regional API Gateway name the custom domain should point at (only with a custom domain). */
  customDomainTarget: "CustomDomainTarget",
  /** Name of the JITR registration Lambda (its log group is `/aws/lambda/{name}`). */
  jitrFunctionName: "JitrFunctionName",
  /** URL of the SQS queue holding JITR events the rule or the Lambda could not process. */
  jitrDeadLetterQueueUrl: "JitrDeadLetterQueueUrl",
  /** ARN of the role AWS IoT assumes to run JITP templates (`onramp ca register --role-arn`). */
  jitpRoleArn: "JitpRoleArn",
  /** Name of the JITP provisioning template (type JITP) for `onramp ca register --jitp`. */
  jitpTemplateName: "JitpTemplateName",
  /** Name of the fleet provisioning (by claim) template. */
  fleetTemplateName: "FleetTemplateName",
  /** Name of the IoT policy to attach to fleet provisioning claim certificates. */
  claimPolicyName: "ClaimPolicyName",
  /** Name of the fleet pre-provisioning hook Lambda. */
  preProvisioningHookFunctionName: "PreProvisioningHookFunctionName",
  /** Name of the fleet provisioning commit Lambda (topic rule on connect lifecycle events). */
  fleetCommitFunctionName: "FleetCommitFunctionName",
  /** URL of the SQS queue holding connection events the commit rule or Lambda could not process. */
  fleetCommitDeadLetterQueueUrl: "FleetCommitDeadLetterQueueUrl",
  /** Name of the certificate rotation Lambda (topic rule on `things/+/certificates/rotate`). */
  certificateRotationFunctionName: "CertificateRotationFunctionName",
  /** URL of the SQS queue holding rotation requests the rule or the Lambda could not process. */
  certificateRotationDeadLetterQueueUrl: "CertificateRotationDeadLetterQueueUrl",
  /** Full URL of Alibaba-style dynamic registration over HTTPS (POST, form-urlencoded). */
  registerDeviceUrl: "RegisterDeviceUrl",
  /** Name of the dynamic registration Lambda behind `POST /auth/register/device`. */
  registerDeviceFunctionName: "RegisterDeviceFunctionName",
  /** CloudWatch log group of the dynamic registration Lambda. */
  registerDeviceLogGroupName: "RegisterDeviceLogGroupName",
  /** Name of the AWS IoT custom authorizer for devices born with a secret (MQTT username/password). */
  customAuthorizerName: "CustomAuthorizerName",
  /** Name of the custom authorizer's Lambda. */
  customAuthorizerFunctionName: "CustomAuthorizerFunctionName",
  /** CloudWatch log group of the custom authorizer Lambda (one line per decision). */
  customAuthorizerLogGroupName: "CustomAuthorizerLogGroupName",
  /** Name of the domain configuration (AWS-managed domain) whose default authorizer is ours. */
  secretDeviceDomainConfigurationName: "SecretDeviceDomainConfigurationName",
  /**
   * A command that prints the host secret-born devices connect to (the domain configuration's
   * AWS-managed domain name has no CloudFormation attribute).
   */
  secretDeviceEndpointHint: "SecretDeviceEndpointHint",
  /** Base URL of the phone API (stage): device-user binding for signed-in users. */
  phoneApiUrl: "PhoneApiUrl",
  /** Cognito user pool of the phone API's users. */
  phoneUserPoolId: "PhoneUserPoolId",
  /** The phone app's Cognito client id (only when the stack created the pool). */
  phoneUserPoolClientId: "PhoneUserPoolClientId",
  /** URL of the SQS queue holding token reports / resets the binding rules or Lambda could not process. */
  bindingReportDeadLetterQueueUrl: "BindingReportDeadLetterQueueUrl",
  /** S3 bucket of bulk provisioning's parameter files and run reports (`onramp bulk provision --aws`). */
  bulkProvisioningBucketName: "BulkProvisioningBucketName",
  /** ARN of the role AWS IoT assumes to run bulk registration tasks (StartThingRegistrationTask). */
  bulkRegistrationRoleArn: "BulkRegistrationRoleArn",
  /** CloudWatch log group of the vend Lambda. */
  vendLogGroupName: "VendLogGroupName",
  /** CloudWatch log group of the vending API's access logs. */
  vendApiAccessLogGroupName: "VendApiAccessLogGroupName",
  /** CloudWatch log group of the JITR Lambda. */
  jitrLogGroupName: "JitrLogGroupName",
  /** CloudWatch log group of the pre-provisioning hook Lambda. */
  preProvisioningHookLogGroupName: "PreProvisioningHookLogGroupName",
  /** CloudWatch log group of the fleet provisioning commit Lambda. */
  fleetCommitLogGroupName: "FleetCommitLogGroupName",
  /** CloudWatch log group of the certificate rotation Lambda. */
  certificateRotationLogGroupName: "CertificateRotationLogGroupName",
} as const;

/**
 * Every output key by a stable property name, both stacks together (the keys are unique across
 * the stacks). `OUTPUTS.jitpRoleArn === "JitpRoleArn"`; {@link OUTPUT_STACK} says which stack
 * holds it.
 */
export const OUTPUTS = { ...REGISTRY_OUTPUTS, ...PROVISIONING_OUTPUTS } as const;

/** A property name of {@link OUTPUTS}. */
export type OutputName = keyof typeof OUTPUTS;

/** Which stack (`registry` or `provisioning`) holds each output. */
export const OUTPUT_STACK: Record<OutputName, keyof typeof STACK_SUFFIXES> = {
  ...(Object.fromEntries(Object.keys(REGISTRY_OUTPUTS).map((k) => [k, "registry"])) as Record<
    keyof typeof REGISTRY_OUTPUTS,
    "registry"
  >),
  ...(Object.fromEntries(Object.keys(PROVISIONING_OUTPUTS).map((k) => [k, "provisioning"])) as Record<
    keyof typeof PROVISIONING_OUTPUTS,
    "provisioning"
  >),
};

/** The export name of an output: `{prefix}-{OutputKey}` (both stacks export every output). */
export function exportName(prefix: string, name: OutputName): string {
  return `${prefix}-${OUTPUTS[name]}`;
}

/**
 * Output keys of the CoAP gateway in the provisioning stack, present only with context
 * `coapGateway=true` (not part of {@link PROVISIONING_OUTPUTS}, which every deployment has).
 */
export const COAP_GATEWAY_OUTPUTS = {
  /** DNS name of the gateway's Network Load Balancer (`coaps://{name}:5684`). */
  dnsName: "CoapGatewayDnsName",
  /** UDP port of its listener (5684). */
  port: "CoapGatewayPort",
} as const;
