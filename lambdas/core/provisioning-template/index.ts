/**
 * The provisioning template engine: the template language of AWS IoT RegisterThing, just-in-time
 * provisioning and fleet provisioning, evaluated without side effects into a ProvisioningPlan.
 * The local AWS IoT emulator executes plans; the CLI describes them. No AWS SDK here.
 */
export { describePlan } from "./describe-plan.ts";
export { evaluateTemplate } from "./evaluate-template.ts";
export { INTRINSIC_FUNCTIONS, MAX_NESTING_DEPTH } from "./intrinsics.ts";
export { CERTIFICATE_PARAMETERS, PARAMETER_TYPES } from "./parameters.ts";
export { MAX_POLICY_DOCUMENT_LENGTH, RESOURCE_TYPES } from "./resources.ts";
export { TemplateError } from "./template-error.ts";
export { MAX_TEMPLATE_BODY_LENGTH, MAX_TEMPLATE_NAME_LENGTH, validateTemplateName } from "./template-name.ts";
export type {
  CertificateParameters,
  OverrideAction,
  PlannedCertificate,
  PlannedPolicy,
  PlannedThing,
  ProvisioningPlan,
} from "./types.ts";
