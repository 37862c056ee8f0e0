import { randomUUID } from "node:crypto";
import * as z from "zod";
import { certificateIdFromArn, policyArn } from "./arns.ts";
import { alreadyExists, deleteConflict, IotServiceError, notFound } from "./errors.ts";
import type { PolicyRecord } from "./iot-state.ts";
import { type EmulatorContext, epochSeconds, type OperationRequest, type Route } from "./operation.ts";
import { paginate, parseInput, policyNameSchema, queryInteger } from "./validation.ts";

/** AWS IoT attaches at most this many policies to one target. */
const MAX_POLICIES_PER_TARGET = 10;

const createPolicyBody = z.object({
  policyDocument: z.string().min(1).max(20480),
  tags: z.array(z.object({ Key: z.string(), Value: z.string().optional() })).optional(),
});

/** MalformedPolicyException unless the document is a JSON object with a Statement. */
export function checkPolicyDocument(document: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    throw new IotServiceError("MalformedPolicyException", "The policy document is not valid JSON.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || !("Statement" in parsed)) {
    throw new IotServiceError(
      "MalformedPolicyException",
      "The policy document must be an object with a Statement.",
    );
  }
}

/** A new policy record (not stored yet). */
export function newPolicyRecord(
  context: EmulatorContext,
  policyName: string,
  policyDocument: string,
): PolicyRecord {
  const now = context.now();
  return {
    policyName,
    policyArn: policyArn(context.scope, policyName),
    policyDocument,
    defaultVersionId: "1",
    creationDate: now,
    lastModifiedDate: now,
    generationId: randomUUID(),
  };
}

/** Checks that a policy can be attached to a target (exists, target known, under the limit). */
export function checkAttachable(context: EmulatorContext, policyName: string, target: string): PolicyRecord {
  const policy = context.state.policy(policyName);
  if (!policy) throw notFound(`Policy ${policyName} does not exist.`);
  const certificateId = certificateIdFromArn(target);
  if (certificateId !== undefined && !context.state.certificate(certificateId)) {
    throw notFound(`Certificate ${certificateId} does not exist.`);
  }
  const attached = context.state.attachedPolicies(target);
  if (!attached.some((p) => p.policyName === policyName) && attached.length >= MAX_POLICIES_PER_TARGET) {
    throw new IotServiceError(
      "LimitExceededException",
      `A target can have at most ${MAX_POLICIES_PER_TARGET} policies.`,
    );
  }
  return policy;
}

function name(request: OperationRequest): string {
  return parseInput(policyNameSchema, request.labels.policyName, "policyName");
}

function createPolicy(context: EmulatorContext, request: OperationRequest) {
  const policyName = name(request);
  const body = parseInput(createPolicyBody, request.body ?? {});
  checkPolicyDocument(body.policyDocument);
  const record = newPolicyRecord(context, policyName, body.policyDocument);
  if (!context.state.insertPolicy(record)) {
    throw alreadyExists(`Policy ${policyName} already exists.`, policyName, record.policyArn);
  }
  return {
    policyName,
    policyArn: record.policyArn,
    policyDocument: record.policyDocument,
    policyVersionId: record.defaultVersionId,
  };
}

function getPolicy(context: EmulatorContext, request: OperationRequest) {
  const policyName = name(request);
  const policy = context.state.policy(policyName);
  if (!policy) throw notFound(`Policy ${policyName} does not exist.`);
  return {
    policyName: policy.policyName,
    policyArn: policy.policyArn,
    policyDocument: policy.policyDocument,
    defaultVersionId: policy.defaultVersionId,
    creationDate: epochSeconds(policy.creationDate),
    lastModifiedDate: epochSeconds(policy.lastModifiedDate),
    generationId: policy.generationId,
  };
}

function deletePolicy(context: EmulatorContext, request: OperationRequest) {
  const policyName = name(request);
  if (!context.state.policy(policyName)) throw notFound(`Policy ${policyName} does not exist.`);
  if (context.state.policyTargets(policyName).length > 0) {
    throw deleteConflict(`Policy ${policyName} is attached to targets; detach it first.`);
  }
  context.state.deletePolicy(policyName);
}

const targetBody = z.object({ target: z.string().min(1).max(2048) });
const targetLabel = z.string().min(1).max(2048);

function attachPolicy(context: EmulatorContext, request: OperationRequest) {
  const policyName = name(request);
  const { target } = parseInput(targetBody, request.body ?? {});
  checkAttachable(context, policyName, target);
  context.state.attachPolicy(policyName, target);
}

function detachPolicy(context: EmulatorContext, request: OperationRequest) {
  const policyName = name(request);
  const { target } = parseInput(targetBody, request.body ?? {});
  if (!context.state.policy(policyName)) throw notFound(`Policy ${policyName} does not exist.`);
  context.state.detachPolicy(policyName, target);
}

function listAttachedPolicies(context: EmulatorContext, request: OperationRequest) {
  const target = parseInput(targetLabel, request.labels.target, "target");
  const pageSize = queryInteger(request.query, "pageSize", 1, 250) ?? 25;
  const { page, nextToken } = paginate(
    context.state.attachedPolicies(target),
    request.query.get("marker"),
    pageSize,
  );
  return {
    policies: page.map((p) => ({ policyName: p.policyName, policyArn: p.policyArn })),
    ...(nextToken ? { nextMarker: nextToken } : {}),
  };
}

/** Routes of the policy operations. */
export const policyRoutes: Route[] = [
  { operation: "CreatePolicy", method: "POST", path: "/policies/{policyName}", handler: createPolicy },
  { operation: "GetPolicy", method: "GET", path: "/policies/{policyName}", handler: getPolicy },
  { operation: "DeletePolicy", method: "DELETE", path: "/policies/{policyName}", handler: deletePolicy },
  { operation: "AttachPolicy", method: "PUT", path: "/target-policies/{policyName}", handler: attachPolicy },
  { operation: "DetachPolicy", method: "POST", path: "/target-policies/{policyName}", handler: detachPolicy },
  {
    operation: "ListAttachedPolicies",
    method: "POST",
    path: "/attached-policies/{target}",
    handler: listAttachedPolicies,
  },
];
