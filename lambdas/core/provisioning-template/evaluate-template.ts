import { type EvaluationContext, evaluateValue, readMappings } from "./intrinsics.ts";
import { childPath, isObject, type JsonObject, type JsonValue, own, typeName } from "./json-value.ts";
import { resolveParameters } from "./parameters.ts";
import { planCertificate, planPolicy, planThing, readResource, scalar } from "./resources.ts";
import { TemplateError } from "./template-error.ts";
import { MAX_TEMPLATE_BODY_LENGTH } from "./template-name.ts";
import type {
  CertificateParameters,
  PlannedCertificate,
  PlannedPolicy,
  PlannedThing,
  ProvisioningPlan,
} from "./types.ts";

const SECTIONS = new Set([
  "Parameters",
  "Mappings",
  "Resources",
  "DeviceConfiguration",
  "Description",
  "AWSTemplateFormatVersion",
]);

/**
 * Evaluates a provisioning template, in the language AWS IoT uses for RegisterThing, JITP and
 * fleet provisioning, into the plan of what it would create. Pure: nothing is created.
 *
 * @param templateBody the template as JSON text, or already parsed
 * @param parameters values for the declared parameters (RegisterThing's `parameters`)
 * @param options.certificate JITP: the device certificate's fields, read as the
 *   `AWS::IoT::Certificate::*` parameters
 * @throws TemplateError for any template or parameter AWS IoT would reject, and never anything else
 */
export function evaluateTemplate(
  templateBody: string | object,
  parameters: Record<string, string>,
  options?: { certificate?: CertificateParameters },
): ProvisioningPlan {
  try {
    return evaluate(templateBody, parameters, options);
  } catch (error) {
    if (error instanceof TemplateError) throw error;
    // Not reached by any input we know of: the contract is "TemplateError or a plan", so an
    // unexpected failure (a bug, a stack overflow) is still reported as a template error.
    throw new TemplateError("templateBody", `the template could not be evaluated: ${String(error)}`, {
      cause: error,
    });
  }
}

function evaluate(templateBody: unknown, parameters: unknown, options: unknown): ProvisioningPlan {
  const template = parseBody(templateBody);
  const certificateFields = isObject(options as JsonValue)
    ? (options as { certificate?: unknown }).certificate
    : undefined;
  for (const key of Object.keys(template)) {
    if (!SECTIONS.has(key)) {
      throw new TemplateError(
        key,
        "unknown template section; allowed: Parameters, Mappings, Resources, DeviceConfiguration, Description",
      );
    }
  }
  const resolved = resolveParameters(own(template, "Parameters"), parameters, certificateFields);
  const context: EvaluationContext = {
    parameters: resolved.refs,
    mappings: readMappings(own(template, "Mappings")),
  };
  let thing: PlannedThing | undefined;
  let certificate: PlannedCertificate | undefined;
  const policies: PlannedPolicy[] = [];

  const resources = own(template, "Resources");
  if (!isObject(resources)) {
    throw new TemplateError(
      "Resources",
      `a template needs a Resources object, got ${typeName(resources ?? null)}`,
    );
  }
  const logicalIds = Object.keys(resources);
  if (logicalIds.length === 0)
    throw new TemplateError("Resources", "a template must declare at least one resource");
  for (const logicalId of logicalIds) {
    const declaration = readResource(logicalId, resources[logicalId] as JsonValue);
    switch (declaration.type) {
      case "AWS::IoT::Thing":
        if (thing) {
          throw new TemplateError(
            declaration.path,
            `a template declares at most one AWS::IoT::Thing ("${thing.logicalId}" is one)`,
          );
        }
        thing = planThing(declaration, context);
        break;
      case "AWS::IoT::Certificate":
        if (certificate) {
          throw new TemplateError(
            declaration.path,
            `a template declares at most one AWS::IoT::Certificate ("${certificate.logicalId}" is one)`,
          );
        }
        certificate = planCertificate(declaration, context);
        break;
      case "AWS::IoT::Policy":
        policies.push(planPolicy(declaration, context));
        break;
    }
  }

  const plan: ProvisioningPlan = {
    parameters: resolved.values,
    ...(thing ? { thing } : {}),
    ...(certificate ? { certificate } : {}),
    policies,
  };
  const deviceConfiguration = own(template, "DeviceConfiguration");
  if (deviceConfiguration !== undefined) {
    plan.deviceConfiguration = readDeviceConfiguration(deviceConfiguration, context);
  }
  return plan;
}

/** Parses the body (text or object) into a JSON object no longer than AWS IoT's limit. */
function parseBody(templateBody: unknown): JsonObject {
  const path = "templateBody";
  let text: string | undefined;
  if (typeof templateBody === "string") {
    text = templateBody;
  } else if (typeof templateBody === "object" && templateBody !== null) {
    try {
      text = JSON.stringify(templateBody);
    } catch (error) {
      throw new TemplateError(path, `the template object is not JSON (${String(error)})`, { cause: error });
    }
  }
  if (text === undefined) {
    throw new TemplateError(path, `a template must be JSON text or an object, got ${typeName(templateBody)}`);
  }
  if (text.length > MAX_TEMPLATE_BODY_LENGTH) {
    throw new TemplateError(
      path,
      `the template has ${text.length} characters; the limit is ${MAX_TEMPLATE_BODY_LENGTH}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TemplateError(path, `malformed JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!isObject(parsed as JsonValue)) {
    throw new TemplateError(path, `a template must be a JSON object, got ${typeName(parsed)}`);
  }
  return parsed as JsonObject;
}

function readDeviceConfiguration(node: JsonValue, context: EvaluationContext): Record<string, string> {
  const path = "DeviceConfiguration";
  if (!isObject(node)) throw new TemplateError(path, `must be an object, got ${typeName(node)}`);
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(node)) {
    const valuePath = childPath(path, key);
    entries.push([key, scalar(evaluateValue(value, valuePath, context), valuePath)]);
  }
  return Object.fromEntries(entries);
}
