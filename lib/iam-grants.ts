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

/** What {@link iotProvisioningStatements} grants. */
export type IotGrants = {
  /** Actions on `cert/*`. */
  certificate: readonly string[];
  /** Actions on `thing/*`. */
  thing: readonly string[];
  /** The IoT policies the templates attach by name (GetPolicy on each). */
  devicePolicyNames: readonly string[];
  /** Actions without a resource type (on `Resource: "*"`; each must be on lib/iam-allow-list.ts). */
  withoutResourceType: readonly string[];
};

/** An IoT ARN of the scope's stack: `arn:{partition}:iot:{region}:{account}:{resource}/{name}`. */
export function iotArn(scope: Construct, resource: string, resourceName: string): string {
  return Stack.of(scope).formatArn({ service: "iot", resource, resourceName });
}

/**
 * The statements `IotCertificates` (cert/*), `IotThings` (thing/*), `IotDevicePolicy` (GetPolicy
 * on each device policy) and `IotActionsWithoutResourceType` (`*`); a statement with no actions is
 * left out.
 */
export function iotProvisioningStatements(scope: Construct, grants: IotGrants): PolicyStatement[] {
  const statement = (sid: string, actions: readonly string[], resources: string[]) =>
    new PolicyStatement({ sid, effect: Effect.ALLOW, actions: [...actions], resources });
  const statements: PolicyStatement[] = [];
  if (grants.certificate.length > 0) {
    statements.push(statement("IotCertificates", grants.certificate, [iotArn(scope, "cert", "*")]));
  }
  if (grants.thing.length > 0) {
    statements.push(statement("IotThings", grants.thing, [iotArn(scope, "thing", "*")]));
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
