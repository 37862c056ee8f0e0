import * as z from "zod";
import { provisioningTemplateArn } from "./arns.ts";
import { alreadyExists, invalidRequest, notFound } from "./errors.ts";
import type { ProvisioningTemplateRecord } from "./iot-state.ts";
import { type EmulatorContext, epochSeconds, type OperationRequest, type Route } from "./operation.ts";
import { paginate, parseInput, queryInteger, templateNameSchema } from "./validation.ts";

/** Template bodies are at most 10,240 characters. */
const templateBodySchema = z
  .string()
  .min(1)
  .max(10240)
  .refine((body) => {
    try {
      const parsed: unknown = JSON.parse(body);
      return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
    } catch {
      return false;
    }
  }, "the template body must be a JSON object");

const hookSchema = z.object({
  targetArn: z.string().min(1).max(2048),
  payloadVersion: z.string().optional(),
});

const createTemplateBody = z.object({
  templateName: templateNameSchema,
  templateBody: templateBodySchema,
  provisioningRoleArn: z.string().min(20).max(2048),
  description: z.string().max(500).optional(),
  enabled: z.boolean().optional(),
  preProvisioningHook: hookSchema.optional(),
  tags: z.array(z.object({ Key: z.string(), Value: z.string().optional() })).optional(),
  type: z.enum(["FLEET_PROVISIONING", "JITP"]).default("FLEET_PROVISIONING"),
});

function createProvisioningTemplate(context: EmulatorContext, request: OperationRequest) {
  const body = parseInput(createTemplateBody, request.body ?? {});
  if (body.preProvisioningHook && body.type !== "FLEET_PROVISIONING") {
    throw invalidRequest("A pre-provisioning hook is only allowed on FLEET_PROVISIONING templates.");
  }
  const now = context.now();
  const record: ProvisioningTemplateRecord = {
    templateName: body.templateName,
    templateArn: provisioningTemplateArn(context.scope, body.templateName),
    templateBody: body.templateBody,
    ...(body.description !== undefined ? { description: body.description } : {}),
    enabled: body.enabled ?? false,
    provisioningRoleArn: body.provisioningRoleArn,
    ...(body.preProvisioningHook ? { preProvisioningHook: body.preProvisioningHook } : {}),
    type: body.type,
    defaultVersionId: 1,
    creationDate: now,
    lastModifiedDate: now,
  };
  if (!context.state.insertProvisioningTemplate(record)) {
    throw alreadyExists(
      `Provisioning template ${record.templateName} already exists.`,
      record.templateName,
      record.templateArn,
    );
  }
  return {
    templateArn: record.templateArn,
    templateName: record.templateName,
    defaultVersionId: record.defaultVersionId,
  };
}

function existing(context: EmulatorContext, request: OperationRequest): ProvisioningTemplateRecord {
  const name = parseInput(templateNameSchema, request.labels.templateName, "templateName");
  const template = context.state.provisioningTemplate(name);
  if (!template) throw notFound(`Provisioning template ${name} does not exist.`);
  return template;
}

function describeProvisioningTemplate(context: EmulatorContext, request: OperationRequest) {
  const t = existing(context, request);
  return {
    templateArn: t.templateArn,
    templateName: t.templateName,
    ...(t.description !== undefined ? { description: t.description } : {}),
    creationDate: epochSeconds(t.creationDate),
    lastModifiedDate: epochSeconds(t.lastModifiedDate),
    defaultVersionId: t.defaultVersionId,
    templateBody: t.templateBody,
    enabled: t.enabled,
    provisioningRoleArn: t.provisioningRoleArn,
    ...(t.preProvisioningHook ? { preProvisioningHook: t.preProvisioningHook } : {}),
    type: t.type,
  };
}

function deleteProvisioningTemplate(context: EmulatorContext, request: OperationRequest) {
  context.state.deleteProvisioningTemplate(existing(context, request).templateName);
}

function listProvisioningTemplates(context: EmulatorContext, request: OperationRequest) {
  const maxResults = queryInteger(request.query, "maxResults", 1, 250) ?? 25;
  const { page, nextToken } = paginate(
    context.state.listProvisioningTemplates(),
    request.query.get("nextToken"),
    maxResults,
    (t) => t.templateName,
  );
  return {
    templates: page.map((t) => ({
      templateArn: t.templateArn,
      templateName: t.templateName,
      ...(t.description !== undefined ? { description: t.description } : {}),
      creationDate: epochSeconds(t.creationDate),
      lastModifiedDate: epochSeconds(t.lastModifiedDate),
      enabled: t.enabled,
      type: t.type,
    })),
    ...(nextToken ? { nextToken } : {}),
  };
}

/** Routes of the provisioning template operations. */
export const provisioningRoutes: Route[] = [
  {
    operation: "CreateProvisioningTemplate",
    method: "POST",
    path: "/provisioning-templates",
    handler: createProvisioningTemplate,
  },
  {
    operation: "DescribeProvisioningTemplate",
    method: "GET",
    path: "/provisioning-templates/{templateName}",
    handler: describeProvisioningTemplate,
  },
  {
    operation: "DeleteProvisioningTemplate",
    method: "DELETE",
    path: "/provisioning-templates/{templateName}",
    handler: deleteProvisioningTemplate,
  },
  {
    operation: "ListProvisioningTemplates",
    method: "GET",
    path: "/provisioning-templates",
    handler: listProvisioningTemplates,
  },
];
