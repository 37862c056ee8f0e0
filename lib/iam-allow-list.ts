/**
 * The only actions an identity policy of this app may grant on `Resource: "*"`. Each is an action
 * for which the Service Authorization Reference (list_awsiot.html) lists no resource type, so IAM
 * cannot scope it by ARN. Everything else is granted on ARNs (table, secret, `thing/*` or
 * `thing/{thingNamePrefix}*`, `cert/*`, `policy/onramp-device-policy`, log group, queue); why
 * `cert/*` and `thing/*` are patterns is in {@link UNSCOPABLE_IOT_RESOURCES}. The vend role uses all four; the
 * certificate rotation role all but CreateKeysAndCertificate (the device sends a CSR); the JITR role and
 * the IoT provisioning role (JITP and fleet templates) only `iot:RegisterThing`; the
 * pre-provisioning hook and the fleet commit none (certificate actions on `cert/*` only). The
 * rotation's `iot:Publish` (data plane) has a resource type, the topic, and is granted on its two
 * answer topics, not here. `test/lib/iam-wildcards.test.ts` fails on any other
 * `"*"` resource and on any wildcard action; the cdk-nag IAM5 suppression quotes these reasons.
 */
export type WildcardResourceGrant = {
  /** The IAM action (`service:Action`, no wildcards). */
  action: string;
  /** Why it needs `Resource: "*"`. */
  reason: string;
};

/** Actions allowed on `Resource: "*"`, with the reason for each. */
export const WILDCARD_RESOURCE_ALLOW_LIST: readonly WildcardResourceGrant[] = [
  {
    // Vend path in CSR mode, and certificate rotation: the certificate only exists after the call.
    action: "iot:CreateCertificateFromCsr",
    reason:
      "no resource type: the certificate is created by the call (vend in CSR mode, certificate rotation)",
  },
  {
    // Vend path, server-key mode (products with allowServerKeys).
    action: "iot:CreateKeysAndCertificate",
    reason: "no resource type: the key pair and certificate are created by the call (vend, server-key mode)",
  },
  {
    // RegisterThing is authorized as a whole; the calls it makes for the template (CreateThing,
    // UpdateThing, AttachPolicy, AttachThingPrincipal, ...) are granted separately on ARNs.
    action: "iot:RegisterThing",
    reason:
      "no resource type: RegisterThing itself takes no ARN; the actions it performs are granted on thing/*, cert/* and the device policy",
  },
  {
    // The account's data endpoint: returned to the device by the vend path, and where the rotation
    // Lambda publishes its answers (cached per Lambda instance in both).
    action: "iot:DescribeEndpoint",
    reason: "no resource type: the endpoint is an account-level setting",
  },
  {
    // The CoAP gateway's task execution role (added by CDK for the image in the bootstrap ECR
    // repository); the image pulls themselves are granted on that repository's ARN.
    action: "ecr:GetAuthorizationToken",
    reason: "no resource type: the registry authorization token is account-wide (CoAP gateway image pull)",
  },
];

/**
 * ARN patterns the IoT grants keep although they are not one resource, and why IAM cannot narrow
 * them further. Read from the Service Authorization Reference for AWS IoT
 * (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html: the
 * resource types of each action and the condition keys of each resource type) and AWS IoT's
 * "Using tags with IAM policies" (https://docs.aws.amazon.com/iot/latest/developerguide/tagging-iot-iam.html:
 * tag conditions apply only where the request names a taggable resource). The cdk-nag IAM5
 * acknowledgements of these patterns quote these reasons.
 */
export const UNSCOPABLE_IOT_RESOURCES = {
  certificate: {
    pattern: "cert/*",
    reason:
      "certificate ids exist only once CreateCertificateFromCsr / CreateKeysAndCertificate (or AWS IoT's auto-registration) returns them, and the cert resource type has no condition key (no aws:ResourceTag), so no ARN or tag can name the certificates of this app in advance; AttachPolicy and DetachPolicy are authorized on the target certificate only, so IAM cannot limit which IoT policy gets attached (the templates name only onramp-device-policy, and GetPolicy is granted on that policy alone)",
  },
  thing: {
    pattern: "thing/*",
    reason:
      "thing names are device serial numbers, unknown at deploy time, and the thing resource type has no condition key (no aws:ResourceTag); set context thingNamePrefix when every thing name shares a prefix to narrow this to thing/{prefix}* (and AttachThingPrincipal / DetachThingPrincipal to those things through iot:thingArn)",
  },
} as const;

/** True when `action` may be granted on `Resource: "*"`. */
export function isWildcardResourceAllowed(action: string): boolean {
  return WILDCARD_RESOURCE_ALLOW_LIST.some((grant) => grant.action === action);
}

/** One finding of {@link wildcardViolations}. */
export type WildcardViolation = { resource: string; statement: string; problem: string };

type Statement = {
  Sid?: string;
  Effect?: string;
  Action?: unknown;
  NotAction?: unknown;
  Resource?: unknown;
  NotResource?: unknown;
};

/**
 * Walks every identity policy of a synthesized CloudFormation template (`AWS::IAM::Policy`,
 * `AWS::IAM::ManagedPolicy`, inline policies of `AWS::IAM::Role`/`User`/`Group`) and reports Allow
 * statements that grant a wildcard action (`*`, `service:*` or any `*` in an action), use
 * `NotAction`/`NotResource`, or grant `Resource: "*"` for an action not on
 * {@link WILDCARD_RESOURCE_ALLOW_LIST}. Resource-based policies (key policies, …) are out of scope.
 */
export function wildcardViolations(template: { Resources?: Record<string, unknown> }): WildcardViolation[] {
  const violations: WildcardViolation[] = [];
  for (const [logicalId, raw] of Object.entries(template.Resources ?? {})) {
    const resource = raw as { Type?: string; Properties?: Record<string, unknown> };
    for (const [where, document] of policyDocuments(resource)) {
      const statements = asArray((document as { Statement?: unknown }).Statement) as Statement[];
      statements.forEach((statement, index) => {
        if (statement.Effect !== "Allow") return;
        const name = `${where}#${statement.Sid ?? index}`;
        const report = (problem: string) =>
          violations.push({ resource: logicalId, statement: name, problem });
        if (statement.NotAction !== undefined) report("NotAction grants everything else");
        if (statement.NotResource !== undefined) report("NotResource grants everything else");
        const actions = asArray(statement.Action).map(String);
        for (const action of actions.filter((a) => a.includes("*"))) report(`wildcard action ${action}`);
        if (asArray(statement.Resource).includes("*")) {
          for (const action of actions.filter((a) => !a.includes("*") && !isWildcardResourceAllowed(a))) {
            report(`${action} on Resource "*" is not on lib/iam-allow-list.ts`);
          }
        }
      });
    }
  }
  return violations;
}

function policyDocuments(resource: {
  Type?: string;
  Properties?: Record<string, unknown>;
}): [string, unknown][] {
  const props = resource.Properties ?? {};
  switch (resource.Type) {
    case "AWS::IAM::Policy":
    case "AWS::IAM::ManagedPolicy":
      return [["PolicyDocument", props.PolicyDocument]];
    case "AWS::IAM::Role":
    case "AWS::IAM::User":
    case "AWS::IAM::Group":
      return asArray(props.Policies).map((p) => {
        const inline = p as { PolicyName?: unknown; PolicyDocument?: unknown };
        return [`Policies/${String(inline.PolicyName)}`, inline.PolicyDocument];
      });
    default:
      return [];
  }
}

function asArray(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
