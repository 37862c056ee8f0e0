import type { SubjectFields } from "#core/pki/index.ts";
import type { IotState, PolicyRecord } from "#local/iot/index.ts";
import {
  evaluatePolicies,
  type IotAction,
  type ParsedPolicy,
  type PolicyContext,
  type PolicyDecision,
  parsePolicyDocument,
  type ResourceScope,
} from "./policy-engine.ts";

/** An authenticated MQTT connection: the client id and the certificate it connected with. */
export type DeviceSession = {
  clientId: string;
  certificateId: string;
  certificateArn: string;
  /** A fresh id per connection, as lifecycle events carry it. */
  sessionIdentifier: string;
  subject: SubjectFields;
  issuer: SubjectFields;
};

/**
 * A connection a custom authorizer let in (MQTT username/password): the policy documents the
 * authorizer returned decide, with no thing or certificate variables (AWS IoT has none for it).
 */
export type AuthorizerSession = {
  kind: "authorizer";
  clientId: string;
  /** What the authorizer answered as principalId (lifecycle events' principalIdentifier). */
  principalId: string;
  sessionIdentifier: string;
  policies: ParsedPolicy[];
};

/** Any authenticated connection of the local endpoint. */
export type ConnectionSession = DeviceSession | AuthorizerSession;

export function isAuthorizerSession(session: ConnectionSession): session is AuthorizerSession {
  return "kind" in session && session.kind === "authorizer";
}

/** A policy decision, or a refusal because the certificate is no longer ACTIVE. */
export type DeviceDecision =
  | (PolicyDecision & { thingName?: string })
  | { allowed: false; reason: "certificate-not-active"; thingName?: string };

const MAX_CACHED_POLICIES = 256;

/**
 * Authorizes what a device does against the emulated registry as it is now: the certificate must
 * still be ACTIVE, and the policies attached to it, plus those of its thing's groups, decide, with the policy variables of the
 * connection (the thing named like the client id, whose variables resolve only when the
 * certificate is attached to it; the client id; the certificate's subject and issuer). Parsed
 * policy documents are cached.
 */
export class DeviceAuthorizer {
  private readonly parsed = new Map<string, ParsedPolicy>();

  constructor(
    private readonly state: IotState,
    /** Region and account of the resource ARNs. */
    readonly scope: ResourceScope,
  ) {}

  /** What the policy variables of this connection resolve to, read from the registry now. */
  context(session: DeviceSession): PolicyContext {
    const thing = this.state.thing(session.clientId);
    return {
      clientId: session.clientId,
      ...(thing
        ? {
            thing: {
              thingName: thing.thingName,
              attached: this.state.thingPrincipals(thing.thingName).includes(session.certificateArn),
              ...(thing.thingTypeName ? { thingTypeName: thing.thingTypeName } : {}),
              attributes: thing.attributes,
            },
          }
        : {}),
      certificate: { subject: session.subject, issuer: session.issuer },
    };
  }

  /** Decides one action on one resource ARN for a connection. */
  authorize(session: ConnectionSession, action: IotAction, resource: string): DeviceDecision {
    if (isAuthorizerSession(session)) {
      return evaluatePolicies(session.policies, {
        action,
        resource,
        context: { clientId: session.clientId },
      });
    }
    const context = this.context(session);
    // The thing is this connection's only when its certificate is attached to it.
    const thingName = context.thing?.attached ? context.thing.thingName : undefined;
    const named = thingName === undefined ? {} : { thingName };
    if (this.state.certificate(session.certificateId)?.status !== "ACTIVE") {
      return { allowed: false, reason: "certificate-not-active", ...named };
    }
    const policies = [
      ...this.state.attachedPolicies(session.certificateArn),
      ...(thingName === undefined ? [] : this.thingGroupPolicies(thingName)),
    ].map((p) => this.parse(p));
    return { ...evaluatePolicies(policies, { action, resource, context }), ...named };
  }

  /**
   * The policies a thing inherits from its static thing groups and their ancestors. AWS IoT applies
   * them to a connection only when the client id is the thing's name ("When attaching things to
   * static thing groups with an AWS IoT Core policy attached, the thing name must match the client
   * ID", https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html) and the thing is
   * the certificate's: the caller passes the thing only then (the thing named by the client id,
   * attached to this certificate), so a client id naming another thing gets no group policy.
   */
  private thingGroupPolicies(thingName: string): PolicyRecord[] {
    const policies: PolicyRecord[] = [];
    const seen = new Set<string>();
    for (const groupName of this.state.thing(thingName)?.thingGroups ?? []) {
      let group = this.state.thingGroup(groupName);
      while (group && !seen.has(group.thingGroupName)) {
        seen.add(group.thingGroupName);
        policies.push(...this.state.attachedPolicies(group.thingGroupArn));
        group =
          group.parentGroupName === undefined ? undefined : this.state.thingGroup(group.parentGroupName);
      }
    }
    return policies;
  }

  private parse(record: PolicyRecord): ParsedPolicy {
    const key = `${record.policyName}\n${record.policyDocument}`;
    let parsed = this.parsed.get(key);
    if (!parsed) {
      if (this.parsed.size >= MAX_CACHED_POLICIES) this.parsed.clear();
      parsed = parsePolicyDocument(record.policyName, record.policyDocument);
      this.parsed.set(key, parsed);
    }
    return parsed;
  }
}
