import { Duration, type RemovalPolicy, Stack } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Effect, type IRole, PolicyStatement, type Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { CfnPolicy, CfnProvisioningTemplate } from "aws-cdk-lib/aws-iot";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import type { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import {
  FLEET_CLAIM_POLICY_DOCUMENT,
  FLEET_CLAIM_POLICY_NAME,
  loadPolicyDocument,
  loadProvisioningTemplate,
  PROVISIONING_TEMPLATES,
} from "#templates/catalog.ts";
import {
  CLAIM_SETTLEMENT_ACTIONS,
  iotArn,
  iotProvisioningStatements,
  tableKeyStatements,
} from "../iam-grants.ts";
import { createRegistryFunction } from "./onramp-function.ts";

/** The hook input/output format AWS IoT uses (`{claimCertificateId, …}` → `{allowProvisioning, …}`). */
export const PRE_PROVISIONING_PAYLOAD_VERSION = "2020-04-01";

/**
 * AWS IoT waits 5 s for the hook, so the function may not run longer; the use case denies by
 * itself after 3 s (`defaultFleetHookConfig.deadlineMs`), well before this.
 */
export const PRE_PROVISIONING_HOOK_TIMEOUT = Duration.seconds(5);

/** Settings of {@link FleetProvisioning}. */
export type FleetProvisioningProps = {
  table: ITable;
  /** The table's customer managed key, if any. */
  tableEncryptionKey?: IKey;
  /** The registry key (opens a device's sealed secret for a re-provisioning proof). */
  registryKeySecret: ISecret;
  registryKeySecretName: string;
  productSecretPrefix: string;
  /** `arn:…:secret:onramp/products/*`: product secrets are created later by the CLI. */
  productSecretArnPattern: string;
  /**
   * With a thing-name prefix (lib/config.ts `thingNamePrefix`), the hook may detach a stale
   * claim's certificate only from things under it (`iot:thingArn`).
   */
  thingNamePrefix?: string;
  /** The role AWS IoT runs the template with (an {@link IotProvisioningRole}). */
  provisioningRole: IRole;
  logRetention: RetentionDays;
  /** Of the hook's log group. */
  removalPolicy?: RemovalPolicy;
};

/**
 * Fleet provisioning by claim on AWS:
 *
 * - the `fleet-claim-device` template (`AWS::IoT::ProvisioningTemplate`, type FLEET_PROVISIONING,
 *   enabled), body from `templates/provisioning/fleet-claim-device.json`, named after that file so
 *   devices publish to `$aws/provisioning-templates/fleet-claim-device/provision/json`;
 * - its pre-provisioning hook, the Lambda `lambdas/entrypoints/pre-provisioning-hook.ts`: phase
 *   one of the two-phase record (it claims the registered serial for the new certificate, settles
 *   a stale claim through AWS IoT, checks a re-provisioning's proof with the device's secret; see
 *   {@link hookStatements}), and the permission for AWS IoT to invoke it from this template only.
 *   Phase two, the commit on the device's first connection, is `FleetCommit` (./fleet-commit.ts);
 * - the IoT policy for claim certificates (`onramp-fleet-claim-policy`, document
 *   `templates/policies/fleet-claim-policy.json`): connect, and the certificate-creation and
 *   provision topics of this template only. The operator attaches it to the claim certificate
 *   they create (the stack creates no claim certificate: its private key would end up in the
 *   template's outputs or a secret nobody rotates).
 *
 * The names are fixed, like the device policy's: one deployment per account and region.
 */
export class FleetProvisioning extends Construct {
  /** The fleet provisioning template. */
  readonly template: CfnProvisioningTemplate;
  /** Its name (`fleet-claim-device`). */
  readonly templateName: string = PROVISIONING_TEMPLATES.fleetClaim;
  /** The pre-provisioning hook function. */
  readonly hookFunction: NodejsFunction;
  /** Its execution role. */
  readonly hookRole: Role;
  /** Its log group. */
  readonly hookLogGroup: LogGroup;
  /** The claim certificates' IoT policy. */
  readonly claimPolicy: CfnPolicy;
  /** Its name (`onramp-fleet-claim-policy`). */
  readonly claimPolicyName: string = FLEET_CLAIM_POLICY_NAME;

  constructor(scope: Construct, id: string, props: FleetProvisioningProps) {
    super(scope, id);
    const hook = createRegistryFunction(new Construct(this, "Hook"), props, {
      entry: "pre-provisioning-hook.ts",
      serviceName: "pre-provisioning-hook",
      description: "iot-onramp: fleet provisioning pre-provisioning hook (claims registered serials)",
      roleDescription: "iot-onramp pre-provisioning-hook function",
      timeout: PRE_PROVISIONING_HOOK_TIMEOUT,
      statements: hookStatements(this, props),
    });
    this.hookFunction = hook.function;
    this.hookRole = hook.role;
    this.hookLogGroup = hook.logGroup;

    // Built from the name, not read from the template, so the template can depend on it: AWS IoT
    // may only call the hook once the permission exists.
    const templateArn = iotArn(this, "provisioningtemplate", this.templateName);
    this.hookFunction.addPermission("IotHookInvoke", {
      principal: new ServicePrincipal("iot.amazonaws.com"),
      action: "lambda:InvokeFunction",
      sourceArn: templateArn,
      sourceAccount: Stack.of(this).account,
    });

    this.template = new CfnProvisioningTemplate(this, "Template", {
      templateName: this.templateName,
      templateType: "FLEET_PROVISIONING",
      description: "iot-onramp fleet provisioning by claim (templates/provisioning/fleet-claim-device.json)",
      templateBody: loadProvisioningTemplate(this.templateName),
      provisioningRoleArn: props.provisioningRole.roleArn,
      enabled: true,
      preProvisioningHook: {
        targetArn: this.hookFunction.functionArn,
        payloadVersion: PRE_PROVISIONING_PAYLOAD_VERSION,
      },
    });
    this.template.node.addDependency(props.provisioningRole);
    const permission = this.hookFunction.permissionsNode.tryFindChild("IotHookInvoke");
    if (!permission) throw new Error("the hook's invoke permission was not created");
    this.template.node.addDependency(permission);

    this.claimPolicy = new CfnPolicy(this, "ClaimPolicy", {
      policyName: FLEET_CLAIM_POLICY_NAME,
      policyDocument: JSON.parse(loadPolicyDocument(FLEET_CLAIM_POLICY_DOCUMENT)),
    });
  }
}

/**
 * Least privilege for the hook, derived from what lambdas/core/fleet/authorize-fleet-provisioning.ts
 * calls through the adapters:
 * - dynamodb-registry.ts: getDevice/getProduct (GetItem), the claim, a late decision's release and
 *   a stale fleet claim's commit (UpdateItem, conditional), a re-provisioning's single-use nonce
 *   (PutItem, conditional). No Query.
 * - secrets-manager-store.ts: GetSecretValue of the product secret or the registry key (the
 *   device's signing secret, for a re-provisioning's proof only).
 * - iot-provisioning.ts: settling a stale claim ({@link CLAIM_SETTLEMENT_ACTIONS}, all on
 *   `cert/*`). No RegisterThing (AWS IoT runs the template with its own role), no thing action,
 *   no certificate creation.
 * - with a customer managed table key: what DynamoDB needs to read and write under it.
 */
export function hookStatements(scope: Construct, props: FleetProvisioningProps): PolicyStatement[] {
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
    ...iotProvisioningStatements(scope, {
      certificate: CLAIM_SETTLEMENT_ACTIONS.certificate,
      thing: [],
      devicePolicyNames: [],
      ...(props.thingNamePrefix ? { thingNamePrefix: props.thingNamePrefix } : {}),
      withoutResourceType: [],
    }),
  ];
  statements.push(...tableKeyStatements(props.tableEncryptionKey, "read-write"));
  return statements;
}
