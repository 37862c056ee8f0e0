import type { ArnScope } from "./arns.ts";
import { Relation } from "./relation.ts";

/** Certificate statuses of AWS IoT. */
export type CertificateStatus =
  | "ACTIVE"
  | "INACTIVE"
  | "REVOKED"
  | "PENDING_TRANSFER"
  | "REGISTER_INACTIVE"
  | "PENDING_ACTIVATION";

/** A device certificate. Times are milliseconds since the epoch. */
export type CertificateRecord = {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  status: CertificateStatus;
  /** Set when the certificate was registered with (or auto-registered from) a registered CA. */
  caCertificateId?: string;
  certificateMode: "DEFAULT" | "SNI_ONLY";
  ownedBy: string;
  creationDate: number;
  lastModifiedDate: number;
  customerVersion: number;
  generationId: string;
  notBefore: number;
  notAfter: number;
};

/** What RegisterCACertificate stores for JITP. */
export type RegistrationConfig = { templateBody?: string; templateName?: string; roleArn?: string };

/** A registered CA certificate. */
export type CaCertificateRecord = {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  status: "ACTIVE" | "INACTIVE";
  autoRegistrationStatus: "ENABLE" | "DISABLE";
  registrationConfig?: RegistrationConfig;
  certificateMode: "DEFAULT" | "SNI_ONLY";
  ownedBy: string;
  creationDate: number;
  lastModifiedDate: number;
  customerVersion: number;
  generationId: string;
  notBefore: number;
  notAfter: number;
};

/** A thing. */
export type ThingRecord = {
  thingName: string;
  thingId: string;
  thingArn: string;
  thingTypeName?: string;
  billingGroupName?: string;
  attributes: Record<string, string>;
  /** Names of the static thing groups the thing is in (AddThingToThingGroup, RegisterThing). */
  thingGroups?: string[];
  version: number;
  creationDate: number;
};

/** One version of a policy. */
export type PolicyVersionRecord = { versionId: string; policyDocument: string; createDate: number };

/**
 * A policy. `policyDocument` is the default version's document (what the policy engine enforces);
 * `versions` holds every version (absent in state files written before versions were emulated:
 * then the policy has the one version `defaultVersionId`).
 */
export type PolicyRecord = {
  policyName: string;
  policyArn: string;
  policyDocument: string;
  defaultVersionId: string;
  creationDate: number;
  lastModifiedDate: number;
  generationId: string;
  versions?: PolicyVersionRecord[];
  /** The id the next CreatePolicyVersion gives (ids are never reused). */
  nextVersionId?: number;
};

/** A thing type. */
export type ThingTypeRecord = {
  thingTypeName: string;
  thingTypeId: string;
  thingTypeArn: string;
  description?: string;
  searchableAttributes?: string[];
  deprecated: boolean;
  deprecationDate?: number;
  creationDate: number;
};

/** A static thing group; membership is kept on the things (`ThingRecord.thingGroups`). */
export type ThingGroupRecord = {
  thingGroupName: string;
  thingGroupId: string;
  thingGroupArn: string;
  parentGroupName?: string;
  description?: string;
  attributes: Record<string, string>;
  version: number;
  creationDate: number;
};

/** A topic rule as CreateTopicRule stores it (`actions` as the API sent them). */
export type TopicRuleRecord = {
  ruleName: string;
  ruleArn: string;
  sql: string;
  description?: string;
  actions: Record<string, unknown>[];
  errorAction?: Record<string, unknown>;
  ruleDisabled: boolean;
  awsIotSqlVersion?: string;
  createdAt: number;
};

/** A provisioning template (one version). */
export type ProvisioningTemplateRecord = {
  templateName: string;
  templateArn: string;
  templateBody: string;
  description?: string;
  enabled: boolean;
  provisioningRoleArn: string;
  preProvisioningHook?: { targetArn: string; payloadVersion?: string };
  type: "FLEET_PROVISIONING" | "JITP";
  defaultVersionId: number;
  creationDate: number;
  lastModifiedDate: number;
};

/** Everything the emulator keeps, as persisted in `iot-state.json`. */
export type IotSnapshot = {
  version: 1;
  registrationCode: string;
  certificates: CertificateRecord[];
  caCertificates: CaCertificateRecord[];
  things: ThingRecord[];
  policies: PolicyRecord[];
  provisioningTemplates: ProvisioningTemplateRecord[];
  /** Principal ARNs attached to each thing. */
  thingPrincipals: Record<string, string[]>;
  /** Target ARNs (certificates, thing groups, identities) each policy is attached to. */
  policyTargets: Record<string, string[]>;
  /** Absent in state files written before these were emulated. */
  thingTypes?: ThingTypeRecord[];
  thingGroups?: ThingGroupRecord[];
  topicRules?: TopicRuleRecord[];
};

/** The record maps of the registry, by the snapshot's field names. */
export type IotCollection =
  | "certificates"
  | "caCertificates"
  | "things"
  | "policies"
  | "provisioningTemplates"
  | "thingTypes"
  | "thingGroups"
  | "topicRules";
/** The two-way relations of the registry, by the snapshot's field names. */
export type IotRelation = "thingPrincipals" | "policyTargets";

/**
 * One step of a write, as the journal records it. Every step sets state (a record, a link) to a
 * value rather than adjusting it, so replaying the journal over the snapshot rebuilds the registry.
 */
export type IotChange =
  | { op: "put"; collection: IotCollection; key: string; record: unknown }
  | { op: "delete"; collection: IotCollection; key: string }
  | { op: "link" | "unlink"; relation: IotRelation; left: string; right: string }
  | { op: "unlinkLeft" | "unlinkRight"; relation: IotRelation; value: string }
  /** `POST /_emulator/reset`: everything but the registration code is gone. */
  | { op: "reset" };

/**
 * The emulated AWS IoT registry of one account and region. Reads return copies; every write is
 * synchronous and checks its preconditions itself (check-and-set), so an HTTP operation that
 * awaited between its checks and its write cannot overwrite a concurrent one. After each write
 * `onChange` runs with its steps (the persistence layer journals them; it must serialize them
 * before returning, since `put` carries the live record).
 *
 * This is also the in-process API for the local MQTT endpoint (JITR/JITP) and tests.
 */
export class IotState {
  private readonly certificates = new Map<string, CertificateRecord>();
  private readonly caCertificates = new Map<string, CaCertificateRecord>();
  private readonly things = new Map<string, ThingRecord>();
  private readonly policies = new Map<string, PolicyRecord>();
  private readonly templates = new Map<string, ProvisioningTemplateRecord>();
  private readonly thingTypes = new Map<string, ThingTypeRecord>();
  private readonly thingGroups = new Map<string, ThingGroupRecord>();
  private readonly topicRules = new Map<string, TopicRuleRecord>();
  private readonly topicRuleListeners = new Set<(rules: TopicRuleRecord[]) => void>();
  /** thing name ↔ principal (certificate ARN) */
  private readonly thingPrincipalLinks: Relation;
  /** policy name ↔ target (certificate ARN) */
  private readonly policyTargetLinks: Relation;
  private code: string;

  constructor(
    readonly scope: ArnScope,
    snapshot: IotSnapshot,
    private readonly onChange: (changes: IotChange[]) => void = () => {},
  ) {
    this.code = snapshot.registrationCode;
    for (const c of snapshot.certificates) this.certificates.set(c.certificateId, c);
    for (const c of snapshot.caCertificates) this.caCertificates.set(c.certificateId, c);
    for (const t of snapshot.things) this.things.set(t.thingName, t);
    for (const p of snapshot.policies) this.policies.set(p.policyName, p);
    for (const t of snapshot.provisioningTemplates) this.templates.set(t.templateName, t);
    for (const t of snapshot.thingTypes ?? []) this.thingTypes.set(t.thingTypeName, t);
    for (const g of snapshot.thingGroups ?? []) this.thingGroups.set(g.thingGroupName, g);
    for (const r of snapshot.topicRules ?? []) this.topicRules.set(r.ruleName, r);
    this.thingPrincipalLinks = new Relation(snapshot.thingPrincipals);
    this.policyTargetLinks = new Relation(snapshot.policyTargets);
  }

  /** An empty registry with a registration code. */
  static emptySnapshot(registrationCode: string): IotSnapshot {
    return {
      version: 1,
      registrationCode,
      certificates: [],
      caCertificates: [],
      things: [],
      policies: [],
      provisioningTemplates: [],
      thingPrincipals: {},
      policyTargets: {},
      thingTypes: [],
      thingGroups: [],
      topicRules: [],
    };
  }

  /** The whole state, for persistence. */
  snapshot(): IotSnapshot {
    return {
      version: 1,
      registrationCode: this.code,
      certificates: [...this.certificates.values()],
      caCertificates: [...this.caCertificates.values()],
      things: [...this.things.values()],
      policies: [...this.policies.values()],
      provisioningTemplates: [...this.templates.values()],
      thingPrincipals: this.thingPrincipalLinks.toJSON(),
      policyTargets: this.policyTargetLinks.toJSON(),
      thingTypes: [...this.thingTypes.values()],
      thingGroups: [...this.thingGroups.values()],
      topicRules: [...this.topicRules.values()],
    };
  }

  /** Replays journaled steps (recovery); does not call `onChange`. */
  applyChanges(changes: readonly IotChange[]): void {
    for (const change of changes) {
      switch (change.op) {
        case "put":
          this.collection(change.collection).set(change.key, change.record);
          break;
        case "delete":
          this.collection(change.collection).delete(change.key);
          break;
        case "link":
          this.relation(change.relation).add(change.left, change.right);
          break;
        case "unlink":
          this.relation(change.relation).remove(change.left, change.right);
          break;
        case "unlinkLeft":
          this.relation(change.relation).removeLeft(change.value);
          break;
        case "unlinkRight":
          this.relation(change.relation).removeRight(change.value);
          break;
        case "reset":
          this.clear();
          break;
      }
    }
  }

  private collection(name: IotCollection): Map<string, unknown> {
    const maps: Record<IotCollection, Map<string, unknown>> = {
      certificates: this.certificates,
      caCertificates: this.caCertificates,
      things: this.things,
      policies: this.policies,
      provisioningTemplates: this.templates,
      thingTypes: this.thingTypes,
      thingGroups: this.thingGroups,
      topicRules: this.topicRules,
    };
    return maps[name];
  }

  private relation(name: IotRelation): Relation {
    return name === "thingPrincipals" ? this.thingPrincipalLinks : this.policyTargetLinks;
  }

  private put(collection: IotCollection, key: string, record: unknown): void {
    this.onChange([{ op: "put", collection, key, record }]);
  }

  private clear(): void {
    for (const map of [
      this.certificates,
      this.caCertificates,
      this.things,
      this.policies,
      this.templates,
      this.thingTypes,
      this.thingGroups,
      this.topicRules,
    ] as Map<string, unknown>[])
      map.clear();
    this.thingPrincipalLinks.clear();
    this.policyTargetLinks.clear();
  }

  /**
   * Forgets everything but the registration code (`POST /_emulator/reset`): an empty account, as
   * a test suite wants it.
   */
  reset(): void {
    this.clear();
    this.onChange([{ op: "reset" }]);
    this.topicRulesChanged();
  }

  /** The account's CA registration code (stable, persisted). */
  get registrationCode(): string {
    return this.code;
  }

  // --- certificates -------------------------------------------------------------------------

  /** A certificate by id, or undefined. */
  certificate(certificateId: string): CertificateRecord | undefined {
    const record = this.certificates.get(certificateId);
    return record && { ...record };
  }

  /** All certificates, oldest first. */
  listCertificates(): CertificateRecord[] {
    return [...this.certificates.values()].map((c) => ({ ...c }));
  }

  /** Adds a certificate; returns false (and changes nothing) if its id is already registered. */
  insertCertificate(record: CertificateRecord): boolean {
    if (this.certificates.has(record.certificateId)) return false;
    this.certificates.set(record.certificateId, { ...record });
    this.put("certificates", record.certificateId, record);
    return true;
  }

  /** Sets a certificate's status; returns the updated record, or undefined if it does not exist. */
  setCertificateStatus(certificateId: string, status: CertificateStatus, now = Date.now()) {
    const record = this.certificates.get(certificateId);
    if (!record) return undefined;
    if (record.status !== status) {
      record.status = status;
      record.lastModifiedDate = now;
      record.customerVersion += 1;
      this.put("certificates", certificateId, record);
    }
    return { ...record };
  }

  /** Removes a certificate and its policy attachments; returns false if it did not exist. */
  deleteCertificate(certificateId: string): boolean {
    const record = this.certificates.get(certificateId);
    if (!record) return false;
    this.certificates.delete(certificateId);
    this.policyTargetLinks.removeRight(record.certificateArn);
    this.thingPrincipalLinks.removeRight(record.certificateArn);
    this.onChange([
      { op: "delete", collection: "certificates", key: certificateId },
      { op: "unlinkRight", relation: "policyTargets", value: record.certificateArn },
      { op: "unlinkRight", relation: "thingPrincipals", value: record.certificateArn },
    ]);
    return true;
  }

  // --- CA certificates ----------------------------------------------------------------------

  /** A registered CA by certificate id, or undefined. */
  caCertificate(certificateId: string): CaCertificateRecord | undefined {
    const record = this.caCertificates.get(certificateId);
    return record && structuredClone(record);
  }

  /** All registered CAs, oldest first. */
  listCaCertificates(): CaCertificateRecord[] {
    return [...this.caCertificates.values()].map((c) => structuredClone(c));
  }

  /** Adds a CA; returns false if it is already registered. */
  insertCaCertificate(record: CaCertificateRecord): boolean {
    if (this.caCertificates.has(record.certificateId)) return false;
    this.caCertificates.set(record.certificateId, structuredClone(record));
    this.put("caCertificates", record.certificateId, record);
    return true;
  }

  /** Replaces a registered CA's mutable fields; returns the record or undefined. */
  updateCaCertificate(
    certificateId: string,
    changes: Partial<
      Pick<CaCertificateRecord, "status" | "autoRegistrationStatus" | "registrationConfig">
    > & {
      removeRegistrationConfig?: boolean;
    },
    now = Date.now(),
  ): CaCertificateRecord | undefined {
    const record = this.caCertificates.get(certificateId);
    if (!record) return undefined;
    if (changes.status) record.status = changes.status;
    if (changes.autoRegistrationStatus) record.autoRegistrationStatus = changes.autoRegistrationStatus;
    if (changes.registrationConfig) record.registrationConfig = { ...changes.registrationConfig };
    if (changes.removeRegistrationConfig) delete record.registrationConfig;
    record.lastModifiedDate = now;
    record.customerVersion += 1;
    this.put("caCertificates", certificateId, record);
    return structuredClone(record);
  }

  /** Removes a registered CA; returns false if it was not registered. */
  deleteCaCertificate(certificateId: string): boolean {
    const deleted = this.caCertificates.delete(certificateId);
    if (deleted) this.onChange([{ op: "delete", collection: "caCertificates", key: certificateId }]);
    return deleted;
  }

  // --- things -------------------------------------------------------------------------------

  /** A thing by name, or undefined. */
  thing(thingName: string): ThingRecord | undefined {
    const record = this.things.get(thingName);
    return record && structuredClone(record);
  }

  /** All things, in creation order. */
  listThings(): ThingRecord[] {
    return [...this.things.values()].map((t) => structuredClone(t));
  }

  /** Adds a thing; returns false if the name is taken. */
  insertThing(record: ThingRecord): boolean {
    if (this.things.has(record.thingName)) return false;
    this.things.set(record.thingName, structuredClone(record));
    this.put("things", record.thingName, record);
    return true;
  }

  /** Replaces a thing (same name); bumps its version. Returns the record or undefined. */
  replaceThing(record: ThingRecord): ThingRecord | undefined {
    const current = this.things.get(record.thingName);
    if (!current) return undefined;
    const next = { ...structuredClone(record), version: current.version + 1 };
    this.things.set(record.thingName, next);
    this.put("things", record.thingName, next);
    return structuredClone(next);
  }

  /**
   * Sets the static groups a thing is in (AddThingToThingGroup and friends do not change the
   * thing's version). Returns false if the thing does not exist.
   */
  setThingGroups(thingName: string, groups: readonly string[]): boolean {
    const current = this.things.get(thingName);
    if (!current) return false;
    const next = { ...current, thingGroups: [...groups] };
    if (next.thingGroups.length === 0) delete (next as { thingGroups?: string[] }).thingGroups;
    this.things.set(thingName, next);
    this.put("things", thingName, next);
    return true;
  }

  /** Removes a thing and its principal attachments; returns false if it did not exist. */
  deleteThing(thingName: string): boolean {
    const deleted = this.things.delete(thingName);
    if (deleted) {
      this.thingPrincipalLinks.removeLeft(thingName);
      this.onChange([
        { op: "delete", collection: "things", key: thingName },
        { op: "unlinkLeft", relation: "thingPrincipals", value: thingName },
      ]);
    }
    return deleted;
  }

  /** Principal ARNs attached to a thing. */
  thingPrincipals(thingName: string): string[] {
    return this.thingPrincipalLinks.rightsOf(thingName);
  }

  /** Names of the things a principal (certificate ARN) is attached to. */
  principalThings(principal: string): string[] {
    return this.thingPrincipalLinks.leftsOf(principal);
  }

  /** Attaches a principal to a thing (idempotent). */
  attachThingPrincipal(thingName: string, principal: string): void {
    if (this.thingPrincipalLinks.add(thingName, principal))
      this.onChange([{ op: "link", relation: "thingPrincipals", left: thingName, right: principal }]);
  }

  /** Detaches a principal from a thing (idempotent). */
  detachThingPrincipal(thingName: string, principal: string): void {
    if (this.thingPrincipalLinks.remove(thingName, principal))
      this.onChange([{ op: "unlink", relation: "thingPrincipals", left: thingName, right: principal }]);
  }

  // --- policies -----------------------------------------------------------------------------

  /** A policy by name, or undefined. */
  policy(policyName: string): PolicyRecord | undefined {
    const record = this.policies.get(policyName);
    return record && { ...record };
  }

  /** All policies, in creation order. */
  listPolicies(): PolicyRecord[] {
    return [...this.policies.values()].map((p) => ({ ...p }));
  }

  /** Adds a policy; returns false if the name is taken. */
  insertPolicy(record: PolicyRecord): boolean {
    if (this.policies.has(record.policyName)) return false;
    this.policies.set(record.policyName, { ...record });
    this.put("policies", record.policyName, record);
    return true;
  }

  /** Replaces a policy (same name): new versions, another default. Returns false if it does not exist. */
  replacePolicy(record: PolicyRecord): boolean {
    if (!this.policies.has(record.policyName)) return false;
    this.policies.set(record.policyName, structuredClone(record));
    this.put("policies", record.policyName, record);
    return true;
  }

  /** Removes a policy; returns false if it did not exist. */
  deletePolicy(policyName: string): boolean {
    const deleted = this.policies.delete(policyName);
    if (deleted) {
      this.policyTargetLinks.removeLeft(policyName);
      this.onChange([
        { op: "delete", collection: "policies", key: policyName },
        { op: "unlinkLeft", relation: "policyTargets", value: policyName },
      ]);
    }
    return deleted;
  }

  /** Targets (certificate ARNs, ...) a policy is attached to. */
  policyTargets(policyName: string): string[] {
    return this.policyTargetLinks.rightsOf(policyName);
  }

  /** Policies attached to a target (a certificate ARN), in attachment order. */
  attachedPolicies(target: string): PolicyRecord[] {
    return this.policyTargetLinks.leftsOf(target).flatMap((name) => {
      const policy = this.policies.get(name);
      return policy ? [{ ...policy }] : [];
    });
  }

  /** Attaches a policy to a target (idempotent). */
  attachPolicy(policyName: string, target: string): void {
    if (this.policyTargetLinks.add(policyName, target))
      this.onChange([{ op: "link", relation: "policyTargets", left: policyName, right: target }]);
  }

  /** Detaches a policy from a target (idempotent). */
  detachPolicy(policyName: string, target: string): void {
    if (this.policyTargetLinks.remove(policyName, target))
      this.onChange([{ op: "unlink", relation: "policyTargets", left: policyName, right: target }]);
  }

  // --- provisioning templates ----------------------------------------------------------------

  /** A provisioning template by name, or undefined. */
  provisioningTemplate(templateName: string): ProvisioningTemplateRecord | undefined {
    const record = this.templates.get(templateName);
    return record && structuredClone(record);
  }

  /** All provisioning templates, in creation order. */
  listProvisioningTemplates(): ProvisioningTemplateRecord[] {
    return [...this.templates.values()].map((t) => structuredClone(t));
  }

  /** Adds a provisioning template; returns false if the name is taken. */
  insertProvisioningTemplate(record: ProvisioningTemplateRecord): boolean {
    if (this.templates.has(record.templateName)) return false;
    this.templates.set(record.templateName, structuredClone(record));
    this.put("provisioningTemplates", record.templateName, record);
    return true;
  }

  /** Removes a provisioning template; returns false if it did not exist. */
  deleteProvisioningTemplate(templateName: string): boolean {
    const deleted = this.templates.delete(templateName);
    if (deleted) this.onChange([{ op: "delete", collection: "provisioningTemplates", key: templateName }]);
    return deleted;
  }

  // --- thing types --------------------------------------------------------------------------

  /** A thing type by name, or undefined. */
  thingType(name: string): ThingTypeRecord | undefined {
    const record = this.thingTypes.get(name);
    return record && structuredClone(record);
  }

  /** All thing types, in creation order. */
  listThingTypes(): ThingTypeRecord[] {
    return [...this.thingTypes.values()].map((t) => structuredClone(t));
  }

  /** Adds a thing type; returns false if the name is taken. */
  insertThingType(record: ThingTypeRecord): boolean {
    if (this.thingTypes.has(record.thingTypeName)) return false;
    this.thingTypes.set(record.thingTypeName, structuredClone(record));
    this.put("thingTypes", record.thingTypeName, record);
    return true;
  }

  /** Replaces a thing type (deprecation); returns false if it does not exist. */
  replaceThingType(record: ThingTypeRecord): boolean {
    if (!this.thingTypes.has(record.thingTypeName)) return false;
    this.thingTypes.set(record.thingTypeName, structuredClone(record));
    this.put("thingTypes", record.thingTypeName, record);
    return true;
  }

  /** Removes a thing type; returns false if it did not exist. */
  deleteThingType(name: string): boolean {
    const deleted = this.thingTypes.delete(name);
    if (deleted) this.onChange([{ op: "delete", collection: "thingTypes", key: name }]);
    return deleted;
  }

  // --- thing groups -------------------------------------------------------------------------

  /** A thing group by name, or undefined. */
  thingGroup(name: string): ThingGroupRecord | undefined {
    const record = this.thingGroups.get(name);
    return record && structuredClone(record);
  }

  /** All thing groups, in creation order. */
  listThingGroups(): ThingGroupRecord[] {
    return [...this.thingGroups.values()].map((g) => structuredClone(g));
  }

  /** Adds a thing group; returns false if the name is taken. */
  insertThingGroup(record: ThingGroupRecord): boolean {
    if (this.thingGroups.has(record.thingGroupName)) return false;
    this.thingGroups.set(record.thingGroupName, structuredClone(record));
    this.put("thingGroups", record.thingGroupName, record);
    return true;
  }

  /** Removes a thing group and every thing's membership in it; returns false if it did not exist. */
  deleteThingGroup(name: string): boolean {
    if (!this.thingGroups.delete(name)) return false;
    const changes: IotChange[] = [{ op: "delete", collection: "thingGroups", key: name }];
    for (const [thingName, thing] of this.things) {
      if (!thing.thingGroups?.includes(name)) continue;
      const next = { ...thing, thingGroups: thing.thingGroups.filter((g) => g !== name) };
      if (next.thingGroups.length === 0) delete (next as { thingGroups?: string[] }).thingGroups;
      this.things.set(thingName, next);
      changes.push({ op: "put", collection: "things", key: thingName, record: next });
    }
    this.onChange(changes);
    return true;
  }

  // --- topic rules --------------------------------------------------------------------------

  /** A topic rule by name, or undefined. */
  topicRule(name: string): TopicRuleRecord | undefined {
    const record = this.topicRules.get(name);
    return record && structuredClone(record);
  }

  /** All topic rules, in creation order. */
  listTopicRules(): TopicRuleRecord[] {
    return [...this.topicRules.values()].map((r) => structuredClone(r));
  }

  /** Adds (`create`) or replaces a topic rule; returns false if `create` and the name is taken. */
  putTopicRule(record: TopicRuleRecord, mode: "create" | "replace"): boolean {
    const exists = this.topicRules.has(record.ruleName);
    if (mode === "create" ? exists : !exists) return false;
    this.topicRules.set(record.ruleName, structuredClone(record));
    this.put("topicRules", record.ruleName, record);
    this.topicRulesChanged();
    return true;
  }

  /** Removes a topic rule; returns false if it did not exist. */
  deleteTopicRule(name: string): boolean {
    const deleted = this.topicRules.delete(name);
    if (deleted) {
      this.onChange([{ op: "delete", collection: "topicRules", key: name }]);
      this.topicRulesChanged();
    }
    return deleted;
  }

  /**
   * Calls `listener` with every topic rule now and after each change (the local rule engine runs
   * the rules created through the API). Returns a function that stops it.
   */
  watchTopicRules(listener: (rules: TopicRuleRecord[]) => void): () => void {
    this.topicRuleListeners.add(listener);
    listener(this.listTopicRules());
    return () => this.topicRuleListeners.delete(listener);
  }

  private topicRulesChanged(): void {
    if (this.topicRuleListeners.size === 0) return;
    const rules = this.listTopicRules();
    for (const listener of this.topicRuleListeners) listener(rules);
  }
}
