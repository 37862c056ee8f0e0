import { createHash } from "node:crypto";
import type { OverrideAction, PlannedThing, ProvisioningPlan } from "#core/provisioning-template/index.ts";
import { certificateFromCsr, certificateFromRegisteredCa, readDeviceCertificate } from "./certificates.ts";
import { IotServiceError } from "./errors.ts";
import type { CertificateRecord, CertificateStatus, PolicyRecord, ThingRecord } from "./iot-state.ts";
import type { EmulatorContext } from "./operation.ts";
import { checkAttachable, newPolicyRecord } from "./policies.ts";
import { newThingRecord } from "./things.ts";
import { attributesSchema, parseInput } from "./validation.ts";

/** What applying a plan created or found. */
export type ProvisioningResult = {
  certificateId?: string;
  certificatePem?: string;
  thingName?: string;
  policyNames: string[];
  /** RegisterThing's `resourceArns`: `thing`, `certificate` and `policy` (the first one). */
  resourceArns: Record<string, string>;
};

/** ResourceRegistrationFailureException: the plan cannot be applied as AWS IoT would refuse it. */
const registrationFailure = (message: string) =>
  new IotServiceError("ResourceRegistrationFailureException", message);

/**
 * Applies a provisioning plan (from `evaluateTemplate`) to the emulated registry, as RegisterThing
 * and JITP do: the certificate from an existing id (its status set as the plan says), a CSR
 * (issued by the emulator's CA) or a PEM signed by a registered CA; the thing created or updated
 * as its OverrideSettings say (DO_NOTHING when unspecified); each policy by name (it must exist)
 * or created from its document (named after the document's SHA-256, reused if it exists); the
 * policies attached to the certificate and the certificate to the thing.
 *
 * All or nothing: the asynchronous work (CSR parsing, signing, signature checks) happens first,
 * then every check, then every write, synchronously, so a failed plan leaves no trace and
 * concurrent plans cannot interleave their writes.
 *
 * @throws IotServiceError InvalidRequestException for a bad CSR, ResourceRegistrationFailureException
 *   for everything else that stops the plan (unknown certificate or policy, revoked certificate,
 *   FAIL override, certificate not signed by a registered CA)
 */
export async function applyProvisioningPlan(
  context: EmulatorContext,
  plan: ProvisioningPlan,
): Promise<ProvisioningResult> {
  const prepared = await prepareCertificate(context, plan);

  // Checks, then writes: synchronous from here on.
  const { state } = context;
  const planned = plan.certificate;
  const newCertificate = prepared.record;
  let certificate: CertificateRecord | undefined = newCertificate;
  let statusChange: CertificateStatus | undefined;
  if (planned && !newCertificate) {
    const id = prepared.existingId;
    certificate = id === undefined ? undefined : state.certificate(id);
    if (!certificate) throw registrationFailure(`Certificate ${id ?? ""} does not exist.`);
    statusChange = plannedStatusChange(
      certificate,
      planned.status as CertificateStatus,
      planned.overrideSettings.Status,
    );
  }
  const policies = plan.policies.map((p) => planPolicy(context, p.policyName, p.policyDocument));
  // A certificate this plan creates is not in the registry yet: it has no policies, so only the
  // existing one is checked (limits). Checking the new one as an AttachPolicy target answered 404
  // for a CSR or CA-signed PEM with an existing policy, where AWS IoT provisions it.
  if (certificate && !newCertificate) {
    for (const { record } of policies)
      checkAttachable(context, record.policyName, certificate.certificateArn);
  }
  const thing = plan.thing ? planThing(context, plan.thing) : undefined;

  // Writes.
  if (newCertificate) {
    if (!state.insertCertificate(newCertificate)) {
      certificate = state.certificate(newCertificate.certificateId);
    }
  } else if (certificate && statusChange) {
    certificate =
      state.setCertificateStatus(certificate.certificateId, statusChange, context.now()) ?? certificate;
  }
  for (const { record, create } of policies) if (create) state.insertPolicy(record);
  if (thing?.change === "create" && !state.insertThing(thing.record)) state.replaceThing(thing.record);
  if (thing?.change === "update") state.replaceThing(thing.record);
  if (certificate) {
    for (const { record } of policies) state.attachPolicy(record.policyName, certificate.certificateArn);
    if (thing) state.attachThingPrincipal(thing.record.thingName, certificate.certificateArn);
  }
  // Provisioned means on disk (JITP lets the device in right after this).
  await context.durable();

  const resourceArns: Record<string, string> = {};
  if (thing) resourceArns.thing = thing.record.thingArn;
  if (certificate) resourceArns.certificate = certificate.certificateArn;
  const firstPolicy = policies[0];
  if (firstPolicy) resourceArns.policy = firstPolicy.record.policyArn;
  return {
    ...(certificate
      ? { certificateId: certificate.certificateId, certificatePem: certificate.certificatePem }
      : {}),
    ...(thing ? { thingName: thing.record.thingName } : {}),
    policyNames: policies.map((p) => p.record.policyName),
    resourceArns,
  };
}

/**
 * The asynchronous part: a certificate the plan creates (from a CSR, or a PEM not registered yet)
 * as `record`, or the id of the existing certificate it names.
 */
async function prepareCertificate(
  context: EmulatorContext,
  plan: ProvisioningPlan,
): Promise<{ record?: CertificateRecord; existingId?: string }> {
  const planned = plan.certificate;
  if (!planned) return {};
  const status = planned.status as CertificateStatus;
  if (planned.certificateSigningRequest !== undefined) {
    return { record: await certificateFromCsr(context, planned.certificateSigningRequest, status) };
  }
  if (planned.certificatePem === undefined)
    return planned.certificateId ? { existingId: planned.certificateId } : {};
  try {
    const { id } = await readDeviceCertificate(context, planned.certificatePem);
    if (context.state.certificate(id)) return { existingId: id };
    const registered = await certificateFromRegisteredCa(
      context,
      planned.certificatePem,
      planned.caCertificatePem,
      status,
    );
    return { record: registered.record };
  } catch (error) {
    if (error instanceof IotServiceError) throw registrationFailure(error.message);
    throw error;
  }
}

function plannedStatusChange(
  certificate: CertificateRecord,
  status: CertificateStatus,
  override: OverrideAction | undefined,
): CertificateStatus | undefined {
  if (certificate.status === status || override === "DO_NOTHING") return undefined;
  if (override === "FAIL") {
    throw registrationFailure(
      `Certificate ${certificate.certificateId} is ${certificate.status}, not ${status}.`,
    );
  }
  if (certificate.status === "REVOKED" || certificate.status === "PENDING_TRANSFER") {
    throw registrationFailure(`Certificate ${certificate.certificateId} is ${certificate.status}.`);
  }
  return status;
}

function planPolicy(
  context: EmulatorContext,
  policyName: string | undefined,
  policyDocument: string | undefined,
): { record: PolicyRecord; create: boolean } {
  if (policyName !== undefined) {
    const record = context.state.policy(policyName);
    if (!record) throw registrationFailure(`Policy ${policyName} does not exist.`);
    return { record, create: false };
  }
  const document = policyDocument ?? "{}";
  const name = createHash("sha256").update(document).digest("hex");
  const record = context.state.policy(name);
  return record
    ? { record, create: false }
    : { record: newPolicyRecord(context, name, document), create: true };
}

/** The thing as it will be stored: new, or the existing one changed as OverrideSettings allow. */
function planThing(
  context: EmulatorContext,
  planned: PlannedThing,
): { record: ThingRecord; change: "create" | "update" | "none" } {
  const current = context.state.thing(planned.thingName);
  // The template refers to thing types and groups; it does not create them
  // (https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html).
  for (const group of planned.thingGroups ?? []) {
    if (!context.state.thingGroup(group)) throw registrationFailure(`Thing group ${group} does not exist.`);
  }
  if (planned.thingTypeName !== undefined) {
    const type = context.state.thingType(planned.thingTypeName);
    if (!type) throw registrationFailure(`Thing type ${planned.thingTypeName} does not exist.`);
    if (!current && type.deprecated) {
      throw registrationFailure(`Thing type ${planned.thingTypeName} is deprecated.`);
    }
  }
  if (!current) {
    const attributes = parseInput(attributesSchema, planned.attributePayload ?? {}, "AttributePayload");
    const record = newThingRecord(context, {
      thingName: planned.thingName,
      attributes,
      ...(planned.thingTypeName ? { thingTypeName: planned.thingTypeName } : {}),
      ...(planned.billingGroup ? { billingGroupName: planned.billingGroup } : {}),
      ...(planned.thingGroups ? { thingGroups: planned.thingGroups } : {}),
    });
    return { record, change: "create" };
  }
  const next: ThingRecord = structuredClone(current);
  const action = (property: string): OverrideAction => planned.overrideSettings[property] ?? "DO_NOTHING";
  const conflict = (property: string) =>
    registrationFailure(
      `Thing ${planned.thingName} exists with a different ${property} and OverrideSettings say FAIL.`,
    );

  if (planned.attributePayload) {
    const wanted = planned.attributePayload;
    const same = JSON.stringify(sortKeys(current.attributes)) === JSON.stringify(sortKeys(wanted));
    switch (action("AttributePayload")) {
      case "REPLACE":
        next.attributes = { ...wanted };
        break;
      case "MERGE":
        next.attributes = { ...current.attributes, ...wanted };
        break;
      case "FAIL":
        if (!same) throw conflict("AttributePayload");
        break;
      case "DO_NOTHING":
        break;
    }
    next.attributes = parseInput(attributesSchema, next.attributes, "AttributePayload");
  }
  if (planned.thingTypeName !== undefined && planned.thingTypeName !== current.thingTypeName) {
    const how = action("ThingTypeName");
    if (how === "FAIL") throw conflict("ThingTypeName");
    if (how === "REPLACE" || how === "MERGE") next.thingTypeName = planned.thingTypeName;
  }
  if (planned.billingGroup !== undefined && planned.billingGroup !== current.billingGroupName) {
    const how = action("BillingGroup");
    if (how === "FAIL") throw conflict("BillingGroup");
    if (how === "REPLACE" || how === "MERGE") next.billingGroupName = planned.billingGroup;
  }
  if (planned.thingGroups) {
    const currentGroups = current.thingGroups ?? [];
    const same = [...currentGroups].sort().join("\n") === [...planned.thingGroups].sort().join("\n");
    const how = action("ThingGroups");
    if (how === "FAIL" && !same) throw conflict("ThingGroups");
    if (how === "REPLACE") next.thingGroups = [...planned.thingGroups];
    if (how === "MERGE") next.thingGroups = [...new Set([...currentGroups, ...planned.thingGroups])];
  }
  return { record: next, change: JSON.stringify(next) === JSON.stringify(current) ? "none" : "update" };
}

function sortKeys(record: Record<string, string>): Array<[string, string]> {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
