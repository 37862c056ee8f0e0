import { Duration, type RemovalPolicy } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import {
  AWS_DEFAULT_IOT_TPS,
  budgetShards,
  type IotQuotas,
  provisioningRate,
} from "#core/admission/quota-profile.ts";
import { VEND_TIMEOUT_SECONDS } from "#core/vending/vend-certificate.ts";
import {
  iotArn,
  iotProvisioningStatements,
  REGISTER_THING_ACTIONS,
  tableKeyStatements,
  UNDO_ACTIONS,
} from "../iam-grants.ts";
import { LAMBDA_SETTINGS } from "../lambda-settings.ts";
import { RegistryFunction } from "./onramp-function.ts";

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
  /** Thing grants on `thing/{prefix}*` (lib/config.ts `thingNamePrefix`); default any thing. */
  thingNamePrefix?: string;
  logRetention: RetentionDays;
  /** Of the log group. */
  removalPolicy?: RemovalPolicy;
  /**
   * The account's AWS IoT quotas (lib/config.ts `iotQuotas`: `aws-default` or raised numbers);
   * they size the provisioning budget (PROVISIONING_RATE / PROVISIONING_SHARDS). Default: AWS's.
   */
  iotQuotas?: IotQuotas;
};

/** API Gateway gives up after 29 s; the function stops first so its own clean-up can answer. */
export const VEND_TIMEOUT = Duration.seconds(VEND_TIMEOUT_SECONDS);

/**
 * The Lambda behind `POST /v1/certificates` (`lambdas/entrypoints/vend-certificate.ts`):
 * Node.js 22 on arm64, an ESM bundle built by the local esbuild (see lib/bundling.ts), its own log
 * group, and a role that allows exactly the calls the vend path makes (see {@link vendStatements}).
 */
export class VendFunction extends RegistryFunction {
  constructor(scope: Construct, id: string, props: VendFunctionProps) {
    super(scope, id, props, {
      entry: "vend-certificate.ts",
      serviceName: "vend-certificate",
      description: "iot-onramp: POST /v1/certificates (certificate vending)",
      roleDescription: "iot-onramp vend-certificate function",
      timeout: VEND_TIMEOUT,
      statements: (self) => vendStatements(self, props),
    });
    const rate = provisioningRate(props.iotQuotas ?? { ...AWS_DEFAULT_IOT_TPS });
    this.function.addEnvironment(LAMBDA_SETTINGS.provisioningRate, String(rate));
    this.function.addEnvironment(LAMBDA_SETTINGS.provisioningShards, String(budgetShards(rate)));
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
    // The direct path (register-device-thing.ts): the product's thing group carries the device
    // policy; the function creates it once, attaches the policy to it and adds things to it.
    new PolicyStatement({
      sid: "ProductThingGroups",
      effect: Effect.ALLOW,
      actions: [
        "iot:DescribeThingGroup",
        "iot:CreateThingGroup",
        "iot:AttachPolicy",
        "iot:AddThingToThingGroup",
        "iot:ListAttachedPolicies",
      ],
      resources: [iotArn(scope, "thinggroup", "onramp-product-*")],
    }),
    new PolicyStatement({
      sid: "ThingGroupMembership",
      effect: Effect.ALLOW,
      actions: ["iot:AddThingToThingGroup", "iot:ListThingGroupsForThing"],
      resources: [iotArn(scope, "thing", `${props.thingNamePrefix ?? ""}*`)],
    }),
    ...iotProvisioningStatements(scope, {
      certificate: [...REGISTER_THING_ACTIONS.certificate, ...UNDO_ACTIONS.certificate],
      thing: [...REGISTER_THING_ACTIONS.thing, ...UNDO_ACTIONS.thing],
      devicePolicyNames: props.devicePolicyNames,
      ...(props.thingNamePrefix ? { thingNamePrefix: props.thingNamePrefix } : {}),
      withoutResourceType: [
        "iot:CreateCertificateFromCsr",
        "iot:CreateKeysAndCertificate",
        "iot:RegisterThing",
        "iot:DescribeEndpoint",
      ],
    }),
  ];
  statements.push(...tableKeyStatements(props.tableEncryptionKey, "read-write"));
  return statements;
}
