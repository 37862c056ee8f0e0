import { join } from "node:path";
import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Effect, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Architecture } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import {
  ENTRYPOINTS_DIR,
  LAMBDA_NODE_OPTIONS,
  LAMBDA_RUNTIME,
  LOCK_FILE,
  nodejsFunctionBundling,
  PROJECT_ROOT,
} from "../bundling.ts";
import { LAMBDA_SETTINGS } from "../lambda-settings.ts";

/** Settings of {@link VendFunction}: the registry resources it uses, by reference. */
export type VendFunctionProps = {
  table: ITable;
  /** The table's customer managed key, if any (the function then needs to use it). */
  tableEncryptionKey?: IKey;
  registryKeySecret: ISecret;
  registryKeySecretName: string;
  productSecretPrefix: string;
  /** `arn:…:secret:onramp/products/*`: product secrets are created later by the CLI. */
  productSecretArnPattern: string;
  /** The IoT policies RegisterThing may attach (the templates name them). */
  devicePolicyNames: readonly string[];
  logRetention: RetentionDays;
  /** Of the log group. */
  removalPolicy?: RemovalPolicy;
};

/** API Gateway gives up after 29 s; the function stops first so its own clean-up can answer. */
export const VEND_TIMEOUT = Duration.seconds(28);

/**
 * The Lambda behind `POST /v1/certificates` (`lambdas/entrypoints/vend-certificate.ts`):
 * Node.js 22 on arm64, an ESM bundle built by the local esbuild (see lib/bundling.ts), its own log
 * group, and a role that allows exactly the calls the vend path makes (see {@link vendStatements}).
 */
export class VendFunction extends Construct {
  /** The function. */
  readonly function: NodejsFunction;
  /** Its execution role (no managed policies). */
  readonly role: Role;
  /** Its log group (explicit retention). */
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: VendFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, "Logs", {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.role = new Role(this, "Role", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: "iot-onramp vend-certificate function",
    });
    this.function = new NodejsFunction(this, "Function", {
      entry: join(ENTRYPOINTS_DIR, "vend-certificate.ts"),
      handler: "handler",
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: LOCK_FILE,
      runtime: LAMBDA_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: 512,
      timeout: VEND_TIMEOUT,
      description: "iot-onramp: POST /v1/certificates (certificate vending)",
      role: this.role,
      logGroup: this.logGroup,
      bundling: nodejsFunctionBundling(),
      environment: {
        [LAMBDA_SETTINGS.registryTableName]: props.table.tableName,
        [LAMBDA_SETTINGS.productSecretPrefix]: props.productSecretPrefix,
        [LAMBDA_SETTINGS.registryKeySecretName]: props.registryKeySecretName,
        POWERTOOLS_SERVICE_NAME: "vend-certificate",
        POWERTOOLS_LOG_LEVEL: "INFO",
        NODE_OPTIONS: LAMBDA_NODE_OPTIONS,
      },
    });
    this.logGroup.grantWrite(this.role);
    for (const statement of vendStatements(this, props)) this.role.addToPrincipalPolicy(statement);
  }
}

/**
 * Least privilege for the vend path, derived from the adapters it calls:
 * - dynamodb-registry.ts: getProduct/getDevice (GetItem), nonce use (PutItem), claim, record,
 *   complete, release (UpdateItem). No Query: the gsi1 index is not on the vend path.
 * - secrets-manager-store.ts: GetSecretValue of a product secret or the registry key. (The store
 *   would CreateSecret the registry key if it were missing; the stack creates it, so no grant.)
 * - iot-provisioning.ts: the 13 IoT calls of the adapter, plus what RegisterThing does on the
 *   caller's behalf for the templates (Thing + existing Policy + CertificateId):
 *   CreateThing/DescribeThing/UpdateThing, DescribeCertificate/UpdateCertificate, GetPolicy,
 *   AttachPolicy, AttachThingPrincipal (the actions of AWSIoTThingsRegistration that apply).
 * Resource types per action follow the Service Authorization Reference: certificate-scoped
 * actions on `cert/*` (AttachPolicy, DetachPolicy, ListAttachedPolicies and the thing-principal
 * actions are authorized on the certificate, the target), thing actions on `thing/*`, GetPolicy on
 * the device policy; the four actions without a resource type are on lib/iam-allow-list.ts.
 */
export function vendStatements(scope: Construct, props: VendFunctionProps): PolicyStatement[] {
  const stack = Stack.of(scope);
  const iotArn = (resource: string, resourceName: string) =>
    stack.formatArn({ service: "iot", resource, resourceName });
  const statements = [
    new PolicyStatement({
      sid: "RegistryTableItems",
      effect: Effect.ALLOW,
      actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
      resources: [props.table.tableArn],
    }),
    new PolicyStatement({
      sid: "ProductSecretsAndRegistryKey",
      effect: Effect.ALLOW,
      actions: ["secretsmanager:GetSecretValue"],
      resources: [props.productSecretArnPattern, props.registryKeySecret.secretArn],
    }),
    new PolicyStatement({
      sid: "IotCertificates",
      effect: Effect.ALLOW,
      actions: [
        "iot:DescribeCertificate",
        "iot:UpdateCertificate",
        "iot:DeleteCertificate",
        "iot:ListAttachedPolicies",
        "iot:AttachPolicy",
        "iot:DetachPolicy",
        "iot:ListPrincipalThings",
        "iot:AttachThingPrincipal",
        "iot:DetachThingPrincipal",
      ],
      resources: [iotArn("cert", "*")],
    }),
    new PolicyStatement({
      sid: "IotThings",
      effect: Effect.ALLOW,
      actions: [
        "iot:CreateThing",
        "iot:DescribeThing",
        "iot:UpdateThing",
        "iot:DeleteThing",
        "iot:ListThingPrincipals",
      ],
      resources: [iotArn("thing", "*")],
    }),
    new PolicyStatement({
      sid: "IotDevicePolicy",
      effect: Effect.ALLOW,
      actions: ["iot:GetPolicy"],
      resources: props.devicePolicyNames.map((name) => iotArn("policy", name)),
    }),
    new PolicyStatement({
      // Each action here is on lib/iam-allow-list.ts with its reason.
      sid: "IotActionsWithoutResourceType",
      effect: Effect.ALLOW,
      actions: [
        "iot:CreateCertificateFromCsr",
        "iot:CreateKeysAndCertificate",
        "iot:RegisterThing",
        "iot:DescribeEndpoint",
      ],
      resources: ["*"],
    }),
  ];
  if (props.tableEncryptionKey) {
    statements.push(
      new PolicyStatement({
        // What DynamoDB needs from the caller to read and write a table under a customer key.
        sid: "RegistryTableKey",
        effect: Effect.ALLOW,
        actions: [
          "kms:Decrypt",
          "kms:DescribeKey",
          "kms:Encrypt",
          "kms:GenerateDataKey",
          "kms:GenerateDataKeyWithoutPlaintext",
          "kms:ReEncryptFrom",
          "kms:ReEncryptTo",
        ],
        resources: [props.tableEncryptionKey.keyArn],
      }),
    );
  }
  return statements;
}
