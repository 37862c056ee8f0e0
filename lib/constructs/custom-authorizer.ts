import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Effect, PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { CfnAuthorizer, CfnDomainConfiguration } from "aws-cdk-lib/aws-iot";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { CfnPermission } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import {
  iotProvisioningStatements,
  SECRET_LOGIN_THING_ACTIONS,
  secretReadStatement,
  tableKeyStatements,
} from "../iam-grants.ts";
import { RegistryFunction } from "./onramp-function.ts";

/** Settings of {@link SecretDeviceAuthorizer}: the registry resources it uses, by reference. */
export type SecretDeviceAuthorizerProps = {
  table: ITable;
  /** The table's customer managed key, if any. */
  tableEncryptionKey?: IKey;
  registryKeySecretArn: string;
  registryKeySecretName: string;
  productSecretPrefix: string;
  /** `arn:…:secret:onramp/products/*`: product secrets are created later by the CLI. */
  productSecretArnPattern: string;
  /**
   * The authorizer's name (`[\w=,@-]{1,128}`): what a device may name in
   * `?x-amz-customauthorizer-name=` and what the domain configuration uses by default.
   */
  authorizerName: string;
  /** Thing grants on `thing/{prefix}*` (lib/config.ts `thingNamePrefix`); default any thing. */
  thingNamePrefix?: string;
  logRetention: RetentionDays;
  /** Of the log group. */
  removalPolicy?: RemovalPolicy;
  /** Reserved concurrency (context `authorizerReservedConcurrency`); unset by default. */
  reservedConcurrentExecutions?: number;
};

/**
 * AWS IoT gives a custom authorizer's Lambda 5 seconds ("The Lambda function timeout limit of a
 * custom authorizer is 5 seconds",
 * https://docs.aws.amazon.com/iot/latest/developerguide/config-custom-auth.html). The entry makes
 * at most two attempts per SDK call (`lambdaServices({ maxAttempts: 2 })`).
 */
export const AUTHORIZER_TIMEOUT = Duration.seconds(5);

/**
 * The domain configuration's protocol settings: MQTT over TLS with custom authentication. AWS IoT
 * chooses the authentication of a connection by the domain configuration the device names in SNI;
 * only "by default or when no SNI extension is sent" does it go by port and ALPN, where custom
 * authentication over MQTT means port 443 with ALPN `mqtt`
 * (https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html, "Protocols, port mappings,
 * and authentication"). Declaring both on this domain lets firmware that sends no ALPN connect.
 */
export const SECRET_DEVICE_DOMAIN_PROTOCOL = {
  authenticationType: "CUSTOM_AUTH",
  applicationProtocol: "SECURE_MQTT",
} as const;

/**
 * The MQTT front door for devices born with a secret (Alibaba one-secret-per-device and dynamic
 * registration's `connwl`, EnOS SecureMode 2 and 3):
 *
 * - the authorizer Lambda (`lambdas/entrypoints/custom-authorizer.ts`), 5 s timeout;
 * - `AWS::IoT::Authorizer` with signing disabled (MQTT username/password carries no token
 *   signature: "useful for … authentication schemes that use MQTT user name and password",
 *   config-custom-auth.html), ACTIVE, no HTTP caching;
 * - the invoke permission for `iot.amazonaws.com`, only from this authorizer (SourceArn) of this
 *   account (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-authorize.html);
 * - `AWS::IoT::DomainConfiguration` on an AWS-managed domain (no `DomainName`, service type DATA:
 *   "When you specify DATA, AWS IoT Core returns an endpoint with an endpoint type of
 *   iot:Data-ATS", https://docs.aws.amazon.com/iot/latest/developerguide/iot-custom-endpoints-configurable-aws.html)
 *   whose default authorizer is ours, without override, so unmodified firmware needs no authorizer
 *   name in its username. The domain is its own host name (not the account's default endpoint):
 *   `aws iot describe-domain-configuration --domain-configuration-name … --query domainName`.
 *
 * The domain configuration is retained when removed: AWS IoT deletes an AWS-managed domain only
 * after it has been DISABLED for 7 days
 * (https://docs.aws.amazon.com/iot/latest/developerguide/iot-custom-endpoints-managing.html), so a
 * stack deletion could not delete it anyway, and keeping it keeps the host name devices use. Its
 * name is left to CloudFormation, so a new deployment after a removal does not collide with it.
 */
export class SecretDeviceAuthorizer extends RegistryFunction {
  /** The AWS IoT authorizer. */
  readonly authorizer: CfnAuthorizer;
  /** Its name. */
  readonly authorizerName: string;
  /** The invoke permission for AWS IoT, scoped to {@link authorizer}. */
  readonly invokePermission: CfnPermission;
  /** The domain configuration whose default authorizer is {@link authorizer}. */
  readonly domainConfiguration: CfnDomainConfiguration;

  constructor(scope: Construct, id: string, props: SecretDeviceAuthorizerProps) {
    super(scope, id, props, {
      entry: "custom-authorizer.ts",
      serviceName: "custom-authorizer",
      description:
        "iot-onramp: AWS IoT custom authorizer (MQTT username/password of devices born with a secret)",
      roleDescription: "iot-onramp custom-authorizer function",
      timeout: AUTHORIZER_TIMEOUT,
      statements: (self) => customAuthorizerStatements(self, props),
    });

    this.authorizerName = props.authorizerName;
    this.authorizer = new CfnAuthorizer(this, "Authorizer", {
      authorizerName: props.authorizerName,
      authorizerFunctionArn: this.function.functionArn,
      signingDisabled: true,
      status: "ACTIVE",
      enableCachingForHttp: false,
    });

    this.function.addPermission("IotAuthorizerInvoke", {
      principal: new ServicePrincipal("iot.amazonaws.com"),
      action: "lambda:InvokeFunction",
      sourceArn: this.authorizer.attrArn,
      sourceAccount: Stack.of(this).account,
    });
    this.invokePermission = this.function.node.findChild("IotAuthorizerInvoke") as CfnPermission;

    this.domainConfiguration = new CfnDomainConfiguration(this, "Domain", {
      serviceType: "DATA",
      domainConfigurationStatus: "ENABLED",
      authenticationType: SECRET_DEVICE_DOMAIN_PROTOCOL.authenticationType,
      applicationProtocol: SECRET_DEVICE_DOMAIN_PROTOCOL.applicationProtocol,
      authorizerConfig: {
        defaultAuthorizerName: this.authorizer.ref,
        allowAuthorizerOverride: false,
      },
    });
    this.domainConfiguration.applyRemovalPolicy(RemovalPolicy.RETAIN);
  }
}

/**
 * Least privilege for the authorizer, derived from what the entry wires
 * (lambdas/handlers/custom-authorizer.ts and lambdas/core/authorizer/*):
 * - dynamodb-registry.ts: getProduct and getDevice (GetItem); on a device's first login
 *   commitSecretLogin (UpdateItem, conditional). No PutItem, no Query.
 * - secrets-manager-store.ts: GetSecretValue of a product secret (derived device secrets, EnOS
 *   SecureMode 3 activation) and of the registry key (sealed device secrets).
 * - iot-provisioning.ts: describeThing and createThing on the first login
 *   ({@link SECRET_LOGIN_THING_ACTIONS}), on `thing/{thingNamePrefix}*`. Nothing on certificates,
 *   policies or `Resource: "*"`.
 */
export function customAuthorizerStatements(
  scope: Construct,
  props: SecretDeviceAuthorizerProps,
): PolicyStatement[] {
  return [
    ...secretLoginStatements(scope, props),
    ...tableKeyStatements(props.tableEncryptionKey, "read-write"),
  ];
}

/**
 * What checking a secret login and recording a first login call, shared by the authorizer and the
 * CoAP gateway (the same use cases): the device's item (GetItem, conditional UpdateItem), the
 * product secret and registry key, DescribeThing/CreateThing on `thing/{prefix}*`, and any
 * actions without a resource type the caller also needs.
 */
export function secretLoginStatements(
  scope: Construct,
  props: {
    table: { tableArn: string };
    productSecretArnPattern: string;
    registryKeySecretArn: string;
    thingNamePrefix?: string;
  },
  withoutResourceType: string[] = [],
): PolicyStatement[] {
  return [
    new PolicyStatement({
      sid: "RegistryTableItems",
      effect: Effect.ALLOW,
      actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
      resources: [props.table.tableArn],
    }),
    secretReadStatement({
      productSecretArnPattern: props.productSecretArnPattern,
      registryKeySecretArn: props.registryKeySecretArn,
    }),
    ...iotProvisioningStatements(scope, {
      certificate: [],
      thing: SECRET_LOGIN_THING_ACTIONS,
      devicePolicyNames: [],
      ...(props.thingNamePrefix ? { thingNamePrefix: props.thingNamePrefix } : {}),
      withoutResourceType,
    }),
  ];
}
