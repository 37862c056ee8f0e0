/**
 * IAM statements the constructs share. Above all the AWS IoT calls of the provisioning flows, in
 * one place so the vend function, the JITR function and the role AWS IoT assumes for JITP / fleet
 * provisioning cannot drift apart. Resource types per action follow the Service Authorization Reference: actions on a
 * certificate (the target of AttachPolicy/DetachPolicy/ListAttachedPolicies, the principal of the
 * thing-principal actions) on `cert/*`, thing actions on `thing/*`, GetPolicy on the device policy.
 * Actions without a resource type go on `Resource: "*"` and must be on lib/iam-allow-list.ts.
 */
import { Stack } from "aws-cdk-lib";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";

/**
 * What RegisterThing does on the caller's behalf for the shipped templates (a Thing, an
 * `AWS::IoT::Certificate` by `CertificateId`, an existing policy by `PolicyName`): the actions of
 * AWS's `AWSIoTThingsRegistration` managed policy that apply to them. No thing groups, thing types,
 * billing groups, CreatePolicy or RegisterCertificate: no shipped template uses them (a template
 * with `CertificatePem`, `ThingGroups` or a `PolicyDocument` needs them added here).
 */
export const REGISTER_THING_ACTIONS = {
  certificate: [
    "iot:DescribeCertificate",
    "iot:UpdateCertificate",
    "iot:AttachPolicy",
    "iot:AttachThingPrincipal",
  ],
  thing: ["iot:CreateThing", "iot:DescribeThing", "iot:UpdateThing"],
  policy: ["iot:GetPolicy"],
} as const;

/**
 * The undo of a failed provisioning flow in `lambdas/adapters/iot-provisioning.ts`:
 * `destroyCertificate` (a crashed vend's leftover), `detachCertificate` and `deleteThingIfUnused`.
 */
export const UNDO_ACTIONS = {
  certificate: [
    "iot:DeleteCertificate",
    "iot:ListAttachedPolicies",
    "iot:DetachPolicy",
    "iot:ListPrincipalThings",
    "iot:DetachThingPrincipal",
  ],
  thing: ["iot:DeleteThing", "iot:ListThingPrincipals"],
} as const;

/**
 * What settling and committing a fleet claim calls on AWS IoT through `ClaimDeps["iot"]`
 * (lambdas/core/registry/claims.ts → lambdas/adapters/iot-provisioning.ts), all on the certificate:
 * `inspectCertificate` (DescribeCertificate, ListAttachedPolicies, ListPrincipalThings),
 * `setCertificateStatus` (UpdateCertificate: an operator's disable/revoke re-applied) and
 * `destroyCertificate` (Describe, the two lists, DetachPolicy, DetachThingPrincipal,
 * UpdateCertificate to REVOKED, DeleteCertificate). The pre-provisioning hook (stale claims) and
 * the fleet commit (and the replaced certificate of a re-provisioning) need exactly these; no
 * thing action, no RegisterThing.
 */
export const CLAIM_SETTLEMENT_ACTIONS = {
  certificate: [
    "iot:DescribeCertificate",
    "iot:ListAttachedPolicies",
    "iot:ListPrincipalThings",
    "iot:UpdateCertificate",
    "iot:DetachPolicy",
    "iot:DetachThingPrincipal",
    "iot:DeleteCertificate",
  ],
} as const;

/**
 * What a secret-born device's first login does on AWS IoT (lambdas/core/authorizer/record-first-login.ts,
 * through `Pick<IotProvisioning, "createThing" | "describeThing">`): look the thing up, create it if
 * missing. Both on the thing; no certificate, no policy (the authorizer returns the session's policy
 * documents itself), no UpdateThing or DeleteThing.
 */
export const SECRET_LOGIN_THING_ACTIONS = ["iot:DescribeThing", "iot:CreateThing"] as const;

/**
 * `secretsmanager:GetSecretValue` on the product secrets (the `{prefix}*` ARN pattern: the operator CLI
 * creates them later) and on the registry key, which the secret store reads to open sealed secrets.
 * No `kms:Decrypt`: the secrets are encrypted with the AWS managed key `aws/secretsmanager`
 * (lib/constructs/secrets.ts sets no key), which Secrets Manager uses on the caller's behalf.
 * No CreateSecret either: the store would create a missing registry key, but the registry stack does.
 */
export function secretReadStatement(props: {
  productSecretArnPattern: string;
  registryKeySecretArn: string;
}): PolicyStatement {
  return new PolicyStatement({
    sid: "ProductSecretsAndRegistryKey",
    effect: Effect.ALLOW,
    actions: ["secretsmanager:GetSecretValue"],
    resources: [props.productSecretArnPattern, props.registryKeySecretArn],
  });
}

/**
 * The two certificate actions that also name a thing. The Service Authorization Reference
 * (list_awsiot.html) authorizes them on the certificate (`cert`) and offers the condition key
 * `iot:thingArn` for them: with a thing-name prefix, the certificate may only be attached to, or
 * detached from, things under that prefix.
 */
export const THING_PRINCIPAL_ACTIONS = ["iot:AttachThingPrincipal", "iot:DetachThingPrincipal"] as const;

/** What {@link iotProvisioningStatements} grants. */
export type IotGrants = {
  /** Actions on `cert/*`. */
  certificate: readonly string[];
  /** Actions on `thing/{thingNamePrefix}*`. */
  thing: readonly string[];
  /**
   * Every thing name of the deployment starts with this (lib/config.ts `thingNamePrefix`); `""` or
   * absent: any thing of the account and region.
   */
  thingNamePrefix?: string;
  /** The IoT policies the templates attach by name (GetPolicy on each). */
  devicePolicyNames: readonly string[];
  /** Actions without a resource type (on `Resource: "*"`; each must be on lib/iam-allow-list.ts). */
  withoutResourceType: readonly string[];
};

/** An IoT ARN of the scope's stack: `arn:{partition}:iot:{region}:{account}:{resource}/{name}`. */
export function iotArn(scope: Construct, resource: string, resourceName: string): string {
  return Stack.of(scope).formatArn({ service: "iot", resource, resourceName });
}

/** The things a role may act on: `thing/{prefix}*` (`thing/*` without a prefix). */
export function thingArnPattern(scope: Construct, thingNamePrefix = ""): string {
  return iotArn(scope, "thing", `${thingNamePrefix}*`);
}

/**
 * The statements `IotCertificates` (cert/*), `IotCertificateToPrefixedThings` (with a thing-name
 * prefix: the thing-principal actions on cert/*, only for things under the prefix), `IotThings`
 * (thing/{prefix}*), `IotDevicePolicy` (GetPolicy on each device policy) and
 * `IotActionsWithoutResourceType` (`*`); a statement with no actions is left out.
 *
 * What IAM cannot narrow further, per the Service Authorization Reference (list_awsiot.html), is
 * on lib/iam-allow-list.ts `UNSCOPABLE_IOT_RESOURCES`: certificates (`cert/*`: ids are created per
 * request, and the `cert` resource type has no condition key, not even `aws:ResourceTag`), the
 * policy AttachPolicy attaches (authorized on the target certificate only), and things without a
 * prefix (the `thing` resource type has no condition key either).
 */
export function iotProvisioningStatements(scope: Construct, grants: IotGrants): PolicyStatement[] {
  const statement = (sid: string, actions: readonly string[], resources: string[]) =>
    new PolicyStatement({ sid, effect: Effect.ALLOW, actions: [...actions], resources });
  const statements: PolicyStatement[] = [];
  const prefix = grants.thingNamePrefix ?? "";
  const things = thingArnPattern(scope, prefix);
  // Without a prefix a condition on iot:thingArn would say "any thing" and add nothing.
  const thingBound = prefix
    ? grants.certificate.filter((a) => (THING_PRINCIPAL_ACTIONS as readonly string[]).includes(a))
    : [];
  const certificate = grants.certificate.filter((a) => !thingBound.includes(a));
  if (certificate.length > 0) {
    // cert/*: see UNSCOPABLE_IOT_RESOURCES in lib/iam-allow-list.ts.
    statements.push(statement("IotCertificates", certificate, [iotArn(scope, "cert", "*")]));
  }
  if (thingBound.length > 0) {
    const bound = statement("IotCertificateToPrefixedThings", thingBound, [iotArn(scope, "cert", "*")]);
    bound.addCondition("ArnLike", { "iot:thingArn": things });
    statements.push(bound);
  }
  if (grants.thing.length > 0) {
    statements.push(statement("IotThings", grants.thing, [things]));
  }
  if (grants.devicePolicyNames.length > 0) {
    statements.push(
      statement(
        "IotDevicePolicy",
        REGISTER_THING_ACTIONS.policy,
        grants.devicePolicyNames.map((name) => iotArn(scope, "policy", name)),
      ),
    );
  }
  if (grants.withoutResourceType.length > 0) {
    // Each action here is on lib/iam-allow-list.ts with its reason.
    statements.push(statement("IotActionsWithoutResourceType", grants.withoutResourceType, ["*"]));
  }
  return statements;
}

/** KMS actions DynamoDB needs from a caller that reads a table under a customer managed key. */
const TABLE_KEY_READ_ACTIONS = ["kms:Decrypt", "kms:DescribeKey"] as const;

/** KMS actions DynamoDB needs from a caller that reads and writes a table under a customer managed key. */
const TABLE_KEY_READ_WRITE_ACTIONS = [
  "kms:Decrypt",
  "kms:DescribeKey",
  "kms:Encrypt",
  "kms:GenerateDataKey",
  "kms:GenerateDataKeyWithoutPlaintext",
  "kms:ReEncryptFrom",
  "kms:ReEncryptTo",
] as const;

/**
 * What DynamoDB needs from a function's role to use the registry table under a customer managed
 * key: none when the table uses the AWS managed key.
 */
export function tableKeyStatements(
  key: { keyArn: string } | undefined,
  access: "read" | "read-write",
): PolicyStatement[] {
  if (!key) return [];
  return [
    new PolicyStatement({
      sid: "RegistryTableKey",
      effect: Effect.ALLOW,
      actions: [...(access === "read" ? TABLE_KEY_READ_ACTIONS : TABLE_KEY_READ_WRITE_ACTIONS)],
      resources: [key.keyArn],
    }),
  ];
}
