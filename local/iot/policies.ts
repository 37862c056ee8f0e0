import { randomUUID } from "node:crypto";
import * as z from "zod";
import { certificateIdFromArn, policyArn, thingGroupNameFromArn } from "./arns.ts";
import { alreadyExists, deleteConflict, IotServiceError, invalidRequest, notFound } from "./errors.ts";
import type { PolicyRecord, PolicyVersionRecord } from "./iot-state.ts";
import { type EmulatorContext, epochSeconds, type OperationRequest, type Route } from "./operation.ts";
import {
  creationKey,
  paginate,
  parseInput,
  policyNameSchema,
  queryBoolean,
  queryInteger,
  requiredHeader,
} from "./validation.ts";

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
    versions: [{ versionId: "1", policyDocument, createDate: now }],
    nextVersionId: 2,
  };
}

/** A Cognito identity id (`region:uuid`), the third kind of AttachPolicy target. */
const COGNITO_IDENTITY = /^[a-z]{2}-[a-z]+-\d:[0-9a-f-]{36}$/;

/**
 * The target as the registry keys it: a certificate ARN of an existing certificate (its stored
 * ARN, whatever region the caller wrote), a thing group ARN of an existing group, or a Cognito
 * identity id. ResourceNotFoundException for a certificate or thing group that does not exist
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_AttachPolicy.html lists it),
 * InvalidRequestException for anything else.
 */
export function resolveTarget(context: EmulatorContext, target: string): string {
  const certificateId = certificateIdFromArn(target);
  if (certificateId !== undefined) {
    const certificate = context.state.certificate(certificateId);
    if (!certificate) throw notFound(`Certificate ${certificateId} does not exist.`);
    return certificate.certificateArn;
  }
  const groupName = thingGroupNameFromArn(target);
  if (groupName !== undefined) {
    const group = context.state.thingGroup(groupName);
    if (!group) throw notFound(`Thing group ${groupName} does not exist.`);
    return group.thingGroupArn;
  }
  if (COGNITO_IDENTITY.test(target)) return target;
  throw invalidRequest(`${target} is not a certificate ARN, a thing group ARN or a Cognito identity id.`);
}

/**
 * Checks that a policy can be attached to an existing target (resolved by `resolveTarget`): the
 * policy exists and the target stays within AWS IoT's limit of policies per target.
 */
export function checkAttachable(context: EmulatorContext, policyName: string, target: string): PolicyRecord {
  const policy = context.state.policy(policyName);
  if (!policy) throw notFound(`Policy ${policyName} does not exist.`);
  const attached = context.state.attachedPolicies(target);
  if (!attached.some((p) => p.policyName === policyName) && attached.length >= MAX_POLICIES_PER_TARGET) {
    throw new IotServiceError(
      "LimitExceededException",
      `A target can have at most ${MAX_POLICIES_PER_TARGET} policies.`,
    );
  }
  return policy;
}

/** A certificate ARN as the registry stores it (any region the caller wrote), else the value itself. */
function storedArn(context: EmulatorContext, target: string): string {
  const certificateId = certificateIdFromArn(target);
  const stored = certificateId === undefined ? undefined : context.state.certificate(certificateId);
  return stored?.certificateArn ?? target;
}

/** A policy has at most five versions (https://docs.aws.amazon.com/iot/latest/apireference/API_CreatePolicyVersion.html). */
const MAX_POLICY_VERSIONS = 5;

/** Every version of a policy (a record from before versions were emulated has its one version). */
function versionsOf(policy: PolicyRecord): PolicyVersionRecord[] {
  return (
    policy.versions ?? [
      {
        versionId: policy.defaultVersionId,
        policyDocument: policy.policyDocument,
        createDate: policy.creationDate,
      },
    ]
  );
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

function existingPolicy(context: EmulatorContext, request: OperationRequest): PolicyRecord {
  const policyName = name(request);
  const policy = context.state.policy(policyName);
  if (!policy) throw notFound(`Policy ${policyName} does not exist.`);
  return policy;
}

/**
 * DeletePolicy: refused while the policy is attached or has versions besides the default one
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_DeletePolicy.html).
 */
function deletePolicy(context: EmulatorContext, request: OperationRequest) {
  const policy = existingPolicy(context, request);
  const { policyName } = policy;
  if (context.state.policyTargets(policyName).length > 0) {
    throw deleteConflict(`Policy ${policyName} is attached to targets; detach it first.`);
  }
  if (versionsOf(policy).length > 1) {
    throw deleteConflict(
      `Policy ${policyName} has non-default versions; delete them with DeletePolicyVersion first.`,
    );
  }
  context.state.deletePolicy(policyName);
}

/** ListPolicies (https://docs.aws.amazon.com/iot/latest/apireference/API_ListPolicies.html). */
function listPolicies(context: EmulatorContext, request: OperationRequest) {
  const pageSize = queryInteger(request.query, "pageSize", 1, 250) ?? 25;
  const ascending = queryBoolean(request.query, "isAscendingOrder") ?? false;
  const { page, nextToken } = paginate(
    context.state.listPolicies(),
    request.query.get("marker"),
    pageSize,
    (p) => creationKey(p.creationDate, p.policyName),
    { descending: !ascending },
  );
  return {
    policies: page.map((p) => ({ policyName: p.policyName, policyArn: p.policyArn })),
    ...(nextToken ? { nextMarker: nextToken } : {}),
  };
}

/** ListTargetsForPolicy (https://docs.aws.amazon.com/iot/latest/apireference/API_ListTargetsForPolicy.html). */
function listTargetsForPolicy(context: EmulatorContext, request: OperationRequest) {
  const policy = existingPolicy(context, request);
  const pageSize = queryInteger(request.query, "pageSize", 1, 250) ?? 25;
  const { page, nextToken } = paginate(
    context.state.policyTargets(policy.policyName),
    request.query.get("marker"),
    pageSize,
    (target) => target,
  );
  return { targets: page, ...(nextToken ? { nextMarker: nextToken } : {}) };
}

/**
 * ListPolicyPrincipals, the policy named by the `x-amzn-iot-policy` header
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_ListPolicyPrincipals.html).
 */
function listPolicyPrincipals(context: EmulatorContext, request: OperationRequest) {
  const policyName = parseInput(
    policyNameSchema,
    requiredHeader(request.headers, "x-amzn-iot-policy"),
    "policyName",
  );
  if (!context.state.policy(policyName)) throw notFound(`Policy ${policyName} does not exist.`);
  const pageSize = queryInteger(request.query, "pageSize", 1, 250) ?? 25;
  const ascending = queryBoolean(request.query, "isAscendingOrder") ?? false;
  const { page, nextToken } = paginate(
    context.state.policyTargets(policyName),
    request.query.get("marker"),
    pageSize,
    (principal) => principal,
    { descending: !ascending },
  );
  return { principals: page, ...(nextToken ? { nextMarker: nextToken } : {}) };
}

const policyVersionIdSchema = z.string().regex(/^[0-9]+$/, "digits");

function existingVersion(context: EmulatorContext, request: OperationRequest) {
  const policy = existingPolicy(context, request);
  const versionId = parseInput(policyVersionIdSchema, request.labels.policyVersionId, "policyVersionId");
  const version = versionsOf(policy).find((v) => v.versionId === versionId);
  if (!version) throw notFound(`Policy ${policy.policyName} has no version ${versionId}.`);
  return { policy, version };
}

/**
 * CreatePolicyVersion: at most five versions (VersionsLimitExceededException); `setAsDefault`
 * makes it the enforced one (https://docs.aws.amazon.com/iot/latest/apireference/API_CreatePolicyVersion.html).
 */
function createPolicyVersion(context: EmulatorContext, request: OperationRequest) {
  const policy = existingPolicy(context, request);
  const { policyDocument } = parseInput(z.object({ policyDocument: z.string().min(1) }), request.body ?? {});
  checkPolicyDocument(policyDocument);
  const setAsDefault = queryBoolean(request.query, "setAsDefault") ?? false;
  const versions = versionsOf(policy);
  if (versions.length >= MAX_POLICY_VERSIONS) {
    throw new IotServiceError(
      "VersionsLimitExceededException",
      `Policy ${policy.policyName} has ${MAX_POLICY_VERSIONS} versions; delete one first.`,
    );
  }
  const nextId = policy.nextVersionId ?? Math.max(...versions.map((v) => Number(v.versionId))) + 1;
  const now = context.now();
  const version: PolicyVersionRecord = { versionId: String(nextId), policyDocument, createDate: now };
  const next: PolicyRecord = {
    ...policy,
    versions: [...versions, version],
    nextVersionId: nextId + 1,
    lastModifiedDate: now,
    ...(setAsDefault
      ? { defaultVersionId: version.versionId, policyDocument, generationId: randomUUID() }
      : {}),
  };
  context.state.replacePolicy(next);
  return {
    policyArn: policy.policyArn,
    policyDocument,
    policyVersionId: version.versionId,
    isDefaultVersion: setAsDefault,
  };
}

function listPolicyVersions(context: EmulatorContext, request: OperationRequest) {
  const policy = existingPolicy(context, request);
  return {
    policyVersions: versionsOf(policy)
      .map((v) => ({
        versionId: v.versionId,
        isDefaultVersion: v.versionId === policy.defaultVersionId,
        createDate: epochSeconds(v.createDate),
      }))
      .reverse(),
  };
}

function getPolicyVersion(context: EmulatorContext, request: OperationRequest) {
  const { policy, version } = existingVersion(context, request);
  return {
    policyArn: policy.policyArn,
    policyName: policy.policyName,
    policyDocument: version.policyDocument,
    policyVersionId: version.versionId,
    isDefaultVersion: version.versionId === policy.defaultVersionId,
    creationDate: epochSeconds(version.createDate),
    lastModifiedDate: epochSeconds(policy.lastModifiedDate),
    generationId: policy.generationId,
  };
}

/** SetDefaultPolicyVersion: the version's document is what the local MQTT endpoint enforces from now on. */
function setDefaultPolicyVersion(context: EmulatorContext, request: OperationRequest) {
  const { policy, version } = existingVersion(context, request);
  if (policy.defaultVersionId === version.versionId) return;
  context.state.replacePolicy({
    ...policy,
    versions: versionsOf(policy),
    defaultVersionId: version.versionId,
    policyDocument: version.policyDocument,
    lastModifiedDate: context.now(),
    generationId: randomUUID(),
  });
}

/**
 * DeletePolicyVersion: the default version cannot be deleted (DeleteConflictException;
 * https://docs.aws.amazon.com/iot/latest/apireference/API_DeletePolicyVersion.html).
 */
function deletePolicyVersion(context: EmulatorContext, request: OperationRequest) {
  const { policy, version } = existingVersion(context, request);
  if (version.versionId === policy.defaultVersionId) {
    throw deleteConflict(
      `Version ${version.versionId} is the default version of ${policy.policyName}; use DeletePolicy.`,
    );
  }
  context.state.replacePolicy({
    ...policy,
    versions: versionsOf(policy).filter((v) => v.versionId !== version.versionId),
    lastModifiedDate: context.now(),
  });
}

const targetBody = z.object({ target: z.string().min(1).max(2048) });
const targetLabel = z.string().min(1).max(2048);

function attachPolicy(context: EmulatorContext, request: OperationRequest) {
  const policyName = name(request);
  const { target } = parseInput(targetBody, request.body ?? {});
  const resolved = resolveTarget(context, target);
  checkAttachable(context, policyName, resolved);
  context.state.attachPolicy(policyName, resolved);
}

/**
 * DetachPolicy: idempotent. Its errors do not include ResourceNotFoundException
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_DetachPolicy.html), so an unknown
 * policy or target detaches nothing and succeeds.
 */
function detachPolicy(context: EmulatorContext, request: OperationRequest) {
  const policyName = name(request);
  const { target } = parseInput(targetBody, request.body ?? {});
  const certificateId = certificateIdFromArn(target);
  const stored = certificateId === undefined ? undefined : context.state.certificate(certificateId);
  context.state.detachPolicy(policyName, stored?.certificateArn ?? target);
}

/** The policies of a target and, for a thing group, of each of its ancestor groups (nearest first). */
function withAncestors(context: EmulatorContext, target: string): PolicyRecord[] {
  const policies = context.state.attachedPolicies(target);
  const groupName = thingGroupNameFromArn(target);
  let group = groupName === undefined ? undefined : context.state.thingGroup(groupName);
  const seen = new Set<string>();
  while (group?.parentGroupName !== undefined && !seen.has(group.parentGroupName)) {
    seen.add(group.parentGroupName);
    group = context.state.thingGroup(group.parentGroupName);
    if (group) policies.push(...context.state.attachedPolicies(group.thingGroupArn));
  }
  const names = new Set<string>();
  return policies.filter((p) => !names.has(p.policyName) && names.add(p.policyName));
}

function listAttachedPolicies(context: EmulatorContext, request: OperationRequest) {
  const target = parseInput(targetLabel, request.labels.target, "target");
  const pageSize = queryInteger(request.query, "pageSize", 1, 250) ?? 25;
  // `recursive`: a thing group's policies include those of its ancestors (ListAttachedPolicies).
  const recursive = request.query.get("recursive") === "true";
  const { page, nextToken } = paginate(
    recursive
      ? withAncestors(context, storedArn(context, target))
      : context.state.attachedPolicies(storedArn(context, target)),
    request.query.get("marker"),
    pageSize,
    (p) => p.policyName,
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
  { operation: "ListPolicies", method: "GET", path: "/policies", handler: listPolicies },
  {
    operation: "ListTargetsForPolicy",
    method: "POST",
    path: "/policy-targets/{policyName}",
    handler: listTargetsForPolicy,
  },
  {
    operation: "ListPolicyPrincipals",
    method: "GET",
    path: "/policy-principals",
    handler: listPolicyPrincipals,
  },
  {
    operation: "CreatePolicyVersion",
    method: "POST",
    path: "/policies/{policyName}/version",
    handler: createPolicyVersion,
  },
  {
    operation: "ListPolicyVersions",
    method: "GET",
    path: "/policies/{policyName}/version",
    handler: listPolicyVersions,
  },
  {
    operation: "GetPolicyVersion",
    method: "GET",
    path: "/policies/{policyName}/version/{policyVersionId}",
    handler: getPolicyVersion,
  },
  {
    operation: "SetDefaultPolicyVersion",
    method: "PATCH",
    path: "/policies/{policyName}/version/{policyVersionId}",
    handler: setDefaultPolicyVersion,
  },
  {
    operation: "DeletePolicyVersion",
    method: "DELETE",
    path: "/policies/{policyName}/version/{policyVersionId}",
    handler: deletePolicyVersion,
  },
];
