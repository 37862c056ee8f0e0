import type { SubjectFields } from "#core/pki/index.ts";
import { evaluateConditions, type PolicyConditionBlock } from "./policy-conditions.ts";
import { matchesPattern, type PolicyVariables } from "./policy-patterns.ts";

/**
 * The local AWS IoT policy engine: decides `iot:Connect`, `iot:Publish`, `iot:Receive` and
 * `iot:Subscribe` for an MQTT client from the policies attached to its certificate, as AWS IoT
 * Core does. Pure functions: the caller reads the registry and passes what it found.
 *
 * Rules: an explicit Deny wins, then any Allow, else deny. Action and Resource (or NotAction /
 * NotResource) are strings or arrays with `*` / `?` wildcards (actions case-insensitive);
 * resources may use policy variables, and a variable without a value makes that resource match
 * nothing. Conditions: see policy-conditions.ts.
 */

/**
 * The MQTT actions the local endpoint authorizes. `iot:RetainPublish` is asked, on the topic's
 * ARN, in addition to `iot:Publish` for a message published with the RETAIN flag:
 * https://docs.aws.amazon.com/iot/latest/developerguide/retained-message-policy-examples.html
 */
export type IotAction = "iot:Connect" | "iot:Publish" | "iot:RetainPublish" | "iot:Receive" | "iot:Subscribe";

/** Who asks: what the policy variables and condition keys resolve to. */
export type PolicyContext = {
  /** The MQTT client id (`iot:ClientId`). */
  clientId: string;
  /**
   * The registry thing whose name is the client id, when there is one; `attached` when this
   * connection's certificate is attached to it (`iot:Connection.Thing.IsAttached`). The thing's
   * variables (`iot:Connection.Thing.ThingName`, `.ThingTypeName`, `.Attributes[...]`) resolve only
   * when it is attached: see policyVariables.
   */
  thing?: {
    thingName: string;
    attached: boolean;
    thingTypeName?: string;
    attributes?: Record<string, string>;
  };
  /** The client certificate's subject and issuer (`iot:Certificate.Subject.*`, `.Issuer.*`). */
  certificate?: { subject: SubjectFields; issuer: SubjectFields };
};

/** What is asked: an action on a resource ARN (see clientArn, topicArn, topicFilterArn). */
export type PolicyRequest = { action: IotAction; resource: string; context: PolicyContext };

/** A decision, with the policy and statement that made it when there is one. */
export type PolicyDecision = {
  allowed: boolean;
  reason: "allowed" | "explicit-deny" | "implicit-deny";
  policyName?: string;
  sid?: string;
};

type Effect = "Allow" | "Deny";
type Matcher = { negated: boolean; patterns: string[] };
type Statement = {
  sid?: string;
  effect: Effect;
  actions: Matcher;
  resources: Matcher;
  conditions?: PolicyConditionBlock;
};

/** A policy document read once; malformed statements are left out and described in `problems`. */
export type ParsedPolicy = { policyName: string; statements: Statement[]; problems: string[] };

/** Where resources live: `arn:aws:iot:{region}:{accountId}:...`. */
export type ResourceScope = { region: string; accountId: string };

/** `iot:Connect` resource: `arn:aws:iot:{region}:{account}:client/{clientId}`. */
export const clientArn = (scope: ResourceScope, clientId: string) =>
  `arn:aws:iot:${scope.region}:${scope.accountId}:client/${clientId}`;
/** `iot:Publish` / `iot:Receive` resource: `...:topic/{topic}`. */
export const topicArn = (scope: ResourceScope, topic: string) =>
  `arn:aws:iot:${scope.region}:${scope.accountId}:topic/${topic}`;
/** `iot:Subscribe` resource: `...:topicfilter/{filter}`. */
export const topicFilterArn = (scope: ResourceScope, filter: string) =>
  `arn:aws:iot:${scope.region}:${scope.accountId}:topicfilter/${filter}`;

/** Certificate name fields by the suffix of their policy variable (`iot:Certificate.Subject.X`). */
const NAME_VARIABLES: ReadonlyArray<[string, keyof SubjectFields]> = [
  ["CommonName", "commonName"],
  ["Country", "country"],
  ["Organization", "organization"],
  ["OrganizationalUnit", "organizationalUnit"],
  ["DistinguishedNameQualifier", "distinguishedNameQualifier"],
  ["State", "stateName"],
  ["Locality", "locality"],
  ["SerialNumber", "serialNumber"],
];

/**
 * The policy variables (and condition keys) a context defines. `iot:Connection.Thing.IsAttached`
 * is always `true` or `false`. The other thing variables exist only when the client id names a
 * thing AND that thing is attached to the connection's certificate: AWS IoT Core takes the thing
 * from the client id and the certificate the device authenticated with, and "if the device
 * certificate is not associated with the thing, this variable won't be resolved"
 * (https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html,
 * https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-examples.html), so a
 * statement using them matches nothing for a client that merely names someone else's thing.
 */
export function policyVariables(context: PolicyContext): Map<string, string> {
  const variables = new Map<string, string>([["iot:ClientId", context.clientId]]);
  const { thing, certificate } = context;
  variables.set("iot:Connection.Thing.IsAttached", String(thing?.attached === true));
  if (thing?.attached === true) {
    variables.set("iot:Connection.Thing.ThingName", thing.thingName);
    if (thing.thingTypeName) variables.set("iot:Connection.Thing.ThingTypeName", thing.thingTypeName);
    for (const [name, value] of Object.entries(thing.attributes ?? {})) {
      variables.set(`iot:Connection.Thing.Attributes[${name}]`, value);
    }
  }
  if (certificate) {
    for (const [suffix, field] of NAME_VARIABLES) {
      const subject = certificate.subject[field];
      const issuer = certificate.issuer[field];
      if (subject !== undefined) variables.set(`iot:Certificate.Subject.${suffix}`, subject);
      if (issuer !== undefined) variables.set(`iot:Certificate.Issuer.${suffix}`, issuer);
    }
  }
  return variables;
}

/** Reads a policy document (JSON text or parsed). Never throws: problems are reported instead. */
export function parsePolicyDocument(policyName: string, document: string | unknown): ParsedPolicy {
  let parsed: unknown = document;
  if (typeof document === "string") {
    try {
      parsed = JSON.parse(document);
    } catch {
      return { policyName, statements: [], problems: ["the document is not JSON"] };
    }
  }
  const raw = isRecord(parsed) ? parsed.Statement : undefined;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0) return { policyName, statements: [], problems: ["the document has no Statement"] };
  const statements: Statement[] = [];
  const problems: string[] = [];
  list.forEach((item, index) => {
    const statement = readStatement(item);
    if (typeof statement === "string") problems.push(`Statement[${index}]: ${statement}`);
    else statements.push(statement);
  });
  return { policyName, statements, problems };
}

/**
 * Decides a request against every policy attached to the principal: an explicit Deny in any of
 * them wins, else an Allow in any of them, else the default deny.
 */
export function evaluatePolicies(policies: readonly ParsedPolicy[], request: PolicyRequest): PolicyDecision {
  const variables = policyVariables(request.context);
  let allow: PolicyDecision | undefined;
  for (const policy of policies) {
    for (const statement of policy.statements) {
      if (!appliesTo(statement, request, variables)) continue;
      const made = {
        policyName: policy.policyName,
        ...(statement.sid !== undefined ? { sid: statement.sid } : {}),
      };
      if (statement.effect === "Deny") return { allowed: false, reason: "explicit-deny", ...made };
      allow ??= { allowed: true, reason: "allowed", ...made };
    }
  }
  return allow ?? { allowed: false, reason: "implicit-deny" };
}

function appliesTo(statement: Statement, request: PolicyRequest, variables: PolicyVariables): boolean {
  const actionMatches = statement.actions.patterns.some((pattern) =>
    matchesPattern(pattern, request.action, { wildcards: true, ignoreCase: true }),
  );
  if (actionMatches === statement.actions.negated) return false;
  const resourceMatches = statement.resources.patterns.some((pattern) =>
    matchesPattern(pattern, request.resource, { wildcards: true, variables }),
  );
  if (resourceMatches === statement.resources.negated) return false;
  return statement.conditions === undefined
    ? true
    : evaluateConditions(statement.conditions, variables, statement.effect);
}

function readStatement(item: unknown): Statement | string {
  if (!isRecord(item)) return "not an object";
  const effect = item.Effect;
  if (effect !== "Allow" && effect !== "Deny") return 'Effect must be "Allow" or "Deny"';
  const actions = readMatcher(item, "Action", "NotAction");
  if (typeof actions === "string") return actions;
  const resources = readMatcher(item, "Resource", "NotResource");
  if (typeof resources === "string") return resources;
  const conditions = item.Condition;
  if (conditions !== undefined && !isRecord(conditions)) return "Condition must be an object";
  return {
    ...(typeof item.Sid === "string" ? { sid: item.Sid } : {}),
    effect,
    actions,
    resources,
    ...(conditions !== undefined ? { conditions: conditions as PolicyConditionBlock } : {}),
  };
}

function readMatcher(item: Record<string, unknown>, key: string, negatedKey: string): Matcher | string {
  const plain = item[key];
  const negated = item[negatedKey];
  if ((plain === undefined) === (negated === undefined)) return `exactly one of ${key} and ${negatedKey}`;
  const value = plain ?? negated;
  const patterns = typeof value === "string" ? [value] : value;
  if (!Array.isArray(patterns) || patterns.length === 0 || !patterns.every((p) => typeof p === "string")) {
    return `${plain === undefined ? negatedKey : key} must be a string or an array of strings`;
  }
  return { negated: plain === undefined, patterns };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
