import type { ProvisioningPlan } from "./types.ts";

/** Human-readable lines saying what a plan would create, for the CLI. */
export function describePlan(plan: ProvisioningPlan): string[] {
  const lines: string[] = [];
  const parameters = Object.entries(plan.parameters);
  if (parameters.length > 0) {
    lines.push("Parameters");
    for (const [name, value] of parameters) lines.push(`  ${name} = ${abbreviate(value)}`);
  }
  const { thing, certificate } = plan;
  if (thing) {
    lines.push(`Thing "${thing.thingName}" (resource ${thing.logicalId})`);
    if (thing.thingTypeName) lines.push(`  type: ${thing.thingTypeName}`);
    const attributes = Object.entries(thing.attributePayload ?? {});
    if (attributes.length > 0)
      lines.push(`  attributes: ${attributes.map(([k, v]) => `${k}=${v}`).join(", ")}`);
    if (thing.thingGroups?.length) lines.push(`  groups: ${thing.thingGroups.join(", ")}`);
    if (thing.billingGroup) lines.push(`  billing group: ${thing.billingGroup}`);
    lines.push(...describeOverrides(thing.overrideSettings));
  }
  if (certificate) {
    const source = certificate.certificateId
      ? `existing certificate ${certificate.certificateId}`
      : certificate.certificateSigningRequest
        ? `new certificate from a CSR (${certificate.certificateSigningRequest.length} characters)`
        : `register a PEM certificate (${certificate.certificatePem?.length ?? 0} characters${certificate.caCertificatePem ? ", with its CA certificate" : ""})`;
    lines.push(`Certificate (resource ${certificate.logicalId}): ${source}`);
    lines.push(`  status: ${certificate.status}`);
    lines.push(...describeOverrides(certificate.overrideSettings));
  }
  for (const policy of plan.policies) {
    if (policy.policyName) {
      lines.push(
        `Policy "${policy.policyName}" (resource ${policy.logicalId}): existing policy, attached to the certificate`,
      );
    } else {
      lines.push(
        `Policy (resource ${policy.logicalId}): new policy named after a hash of its document, attached to the certificate`,
      );
      lines.push(`  document: ${policy.policyDocument ?? ""}`);
    }
  }
  if (plan.thing && plan.certificate)
    lines.push(`The certificate is attached to thing "${plan.thing.thingName}".`);
  if (plan.deviceConfiguration) {
    lines.push("Device configuration");
    for (const [key, value] of Object.entries(plan.deviceConfiguration)) lines.push(`  ${key} = ${value}`);
  }
  return lines;
}

function describeOverrides(settings: Record<string, string>): string[] {
  const entries = Object.entries(settings);
  return entries.length > 0 ? [`  if it exists: ${entries.map(([k, v]) => `${k} ${v}`).join(", ")}`] : [];
}

function abbreviate(value: string): string {
  const oneLine = value.replace(/\s+/g, " ");
  return oneLine.length > 80 ? `${oneLine.slice(0, 77)}...` : oneLine;
}
