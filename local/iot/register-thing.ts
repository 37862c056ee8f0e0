import * as z from "zod";
import { evaluateTemplate, TemplateError } from "#core/provisioning-template/index.ts";
import { applyProvisioningPlan } from "./apply-provisioning-plan.ts";
import { IotServiceError, invalidRequest } from "./errors.ts";
import type { EmulatorContext, OperationRequest, Route } from "./operation.ts";
import { parseInput } from "./validation.ts";

const registerThingBody = z.object({
  templateBody: z.string().min(1).max(10240),
  parameters: z.record(z.string(), z.string()).optional(),
});

/**
 * The errors RegisterThing can answer with
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterThing.html); anything else that
 * stops a plan (an unknown resource, a limit) is a ResourceRegistrationFailureException.
 */
const REGISTER_THING_ERRORS = new Set([
  "ConflictingResourceUpdateException",
  "InternalFailureException",
  "InvalidRequestException",
  "ResourceRegistrationFailureException",
  "ServiceUnavailableException",
  "ThrottlingException",
  "UnauthorizedException",
]);

/**
 * RegisterThing: evaluates the template with the provisioning-template engine and applies the
 * plan. Template and parameter errors are InvalidRequestException; failures while applying
 * (a missing policy, an unknown certificate, a FAIL override) ResourceRegistrationFailureException.
 */
async function registerThing(context: EmulatorContext, request: OperationRequest) {
  const body = parseInput(registerThingBody, request.body ?? {});
  return runRegisterThing(context, body.templateBody, body.parameters ?? {});
}

/**
 * RegisterThing's work, also run for each line of a bulk registration task
 * (`registration-tasks.ts`): evaluate, apply, map errors as RegisterThing answers them.
 */
export async function runRegisterThing(
  context: EmulatorContext,
  templateBody: string,
  parameters: Record<string, string>,
): Promise<{ certificatePem?: string; resourceArns: Record<string, string> }> {
  let plan: ReturnType<typeof evaluateTemplate>;
  try {
    plan = evaluateTemplate(templateBody, parameters);
  } catch (error) {
    if (error instanceof TemplateError) throw invalidRequest(error.message);
    throw error;
  }
  let result: Awaited<ReturnType<typeof applyProvisioningPlan>>;
  try {
    result = await applyProvisioningPlan(context, plan);
  } catch (error) {
    if (error instanceof IotServiceError && !REGISTER_THING_ERRORS.has(error.errorType)) {
      throw new IotServiceError("ResourceRegistrationFailureException", error.message);
    }
    throw error;
  }
  return {
    ...(result.certificatePem ? { certificatePem: result.certificatePem } : {}),
    resourceArns: result.resourceArns,
  };
}

/** The RegisterThing route. */
export const registerThingRoutes: Route[] = [
  { operation: "RegisterThing", method: "POST", path: "/things", handler: registerThing },
];
