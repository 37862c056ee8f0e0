import { randomUUID } from "node:crypto";
import * as z from "zod";
import { certificateIdFromArn, thingArn } from "./arns.ts";
import { alreadyExists, IotServiceError, invalidRequest, notFound } from "./errors.ts";
import type { ThingRecord } from "./iot-state.ts";
import type { EmulatorContext, OperationRequest, Route } from "./operation.ts";
import { usableThingType } from "./thing-types.ts";
import {
  attributesSchema,
  paginate,
  parseInput,
  queryBoolean,
  queryInteger,
  requiredHeader,
  thingNameSchema,
} from "./validation.ts";

const typeNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-zA-Z0-9:_-]+$/);

const createThingBody = z.object({
  thingTypeName: typeNameSchema.optional(),
  attributePayload: z
    .object({ attributes: attributesSchema.optional(), merge: z.boolean().optional() })
    .optional(),
  billingGroupName: typeNameSchema.optional(),
});

const updateThingBody = z.object({
  thingTypeName: typeNameSchema.optional(),
  attributePayload: z
    .object({
      attributes: z.record(z.string(), z.string().max(800)).optional(),
      merge: z.boolean().optional(),
    })
    .optional(),
  expectedVersion: z.number().int().optional(),
  removeThingType: z.boolean().optional(),
});

/** A new thing record (not stored yet). */
export function newThingRecord(
  context: EmulatorContext,
  fields: Pick<ThingRecord, "thingName"> & Partial<Omit<ThingRecord, "thingName">>,
): ThingRecord {
  return {
    thingId: randomUUID(),
    thingArn: thingArn(context.scope, fields.thingName),
    attributes: {},
    version: 1,
    creationDate: context.now(),
    ...fields,
  };
}

/** DescribeThing's answer for a record. */
export function describeThingRecord(thing: ThingRecord) {
  return {
    defaultClientId: thing.thingName,
    thingName: thing.thingName,
    thingId: thing.thingId,
    thingArn: thing.thingArn,
    ...(thing.thingTypeName ? { thingTypeName: thing.thingTypeName } : {}),
    attributes: thing.attributes,
    version: thing.version,
    ...(thing.billingGroupName ? { billingGroupName: thing.billingGroupName } : {}),
  };
}

function thingName(request: OperationRequest): string {
  return parseInput(thingNameSchema, request.labels.thingName, "thingName");
}

function existing(context: EmulatorContext, request: OperationRequest): ThingRecord {
  const name = thingName(request);
  const thing = context.state.thing(name);
  if (!thing) throw notFound(`Thing ${name} does not exist.`);
  return thing;
}

function sameAttributes(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k]);
}

function createThing(context: EmulatorContext, request: OperationRequest) {
  const name = thingName(request);
  const body = parseInput(createThingBody, request.body ?? {});
  const attributes = body.attributePayload?.attributes ?? {};
  const current = context.state.thing(name);
  if (body.thingTypeName !== undefined && current?.thingTypeName !== body.thingTypeName) {
    usableThingType(context, body.thingTypeName);
  }
  if (current) {
    // Same name and configuration: AWS IoT answers with the existing thing.
    if (
      sameAttributes(current.attributes, attributes) &&
      current.thingTypeName === body.thingTypeName &&
      current.billingGroupName === body.billingGroupName
    ) {
      return { thingName: current.thingName, thingArn: current.thingArn, thingId: current.thingId };
    }
    throw alreadyExists(
      `Thing ${name} already exists with a different configuration.`,
      current.thingId,
      current.thingArn,
    );
  }
  const record = newThingRecord(context, {
    thingName: name,
    attributes,
    ...(body.thingTypeName ? { thingTypeName: body.thingTypeName } : {}),
    ...(body.billingGroupName ? { billingGroupName: body.billingGroupName } : {}),
  });
  if (!context.state.insertThing(record)) throw alreadyExists(`Thing ${name} already exists.`, name);
  return { thingName: record.thingName, thingArn: record.thingArn, thingId: record.thingId };
}

function describeThing(context: EmulatorContext, request: OperationRequest) {
  return describeThingRecord(existing(context, request));
}

function updateThing(context: EmulatorContext, request: OperationRequest) {
  const thing = existing(context, request);
  const body = parseInput(updateThingBody, request.body ?? {});
  if (body.expectedVersion !== undefined && body.expectedVersion !== thing.version) {
    throw new IotServiceError(
      "VersionConflictException",
      `Thing ${thing.thingName} is at version ${thing.version}.`,
    );
  }
  if (body.removeThingType && body.thingTypeName)
    throw invalidRequest("removeThingType and thingTypeName exclude each other.");
  const payload = body.attributePayload;
  let attributes = thing.attributes;
  if (payload?.attributes) {
    // merge: empty values delete; without merge the attributes are replaced.
    attributes = payload.merge ? { ...thing.attributes, ...payload.attributes } : { ...payload.attributes };
    for (const [key, value] of Object.entries(attributes)) if (value === "") delete attributes[key];
    parseInput(attributesSchema, attributes, "attributePayload");
  }
  const next: ThingRecord = { ...thing, attributes };
  if (body.thingTypeName && body.thingTypeName !== thing.thingTypeName) {
    usableThingType(context, body.thingTypeName);
  }
  if (body.thingTypeName) next.thingTypeName = body.thingTypeName;
  if (body.removeThingType) delete next.thingTypeName;
  context.state.replaceThing(next);
}

function deleteThing(context: EmulatorContext, request: OperationRequest) {
  const name = thingName(request);
  const thing = context.state.thing(name);
  if (!thing) return; // AWS IoT: deleting a thing that does not exist succeeds.
  const expectedVersion = queryInteger(request.query, "expectedVersion", 0, Number.MAX_SAFE_INTEGER);
  if (expectedVersion !== undefined && expectedVersion !== thing.version) {
    throw new IotServiceError("VersionConflictException", `Thing ${name} is at version ${thing.version}.`);
  }
  if (context.state.thingPrincipals(name).length > 0) {
    throw invalidRequest(
      `Cannot delete thing ${name}: detach all principals attached to the thing and try again.`,
    );
  }
  context.state.deleteThing(name);
}

function listThings(context: EmulatorContext, request: OperationRequest) {
  const maxResults = queryInteger(request.query, "maxResults", 1, 250) ?? 50;
  const attributeName = request.query.get("attributeName");
  const attributeValue = request.query.get("attributeValue");
  const thingTypeName = request.query.get("thingTypeName");
  const prefix = queryBoolean(request.query, "usePrefixAttributeValue") ?? false;
  if (prefix && (attributeName === null || attributeValue === null)) {
    throw invalidRequest("usePrefixAttributeValue needs attributeName and attributeValue.");
  }
  const things = context.state.listThings().filter((thing) => {
    if (thingTypeName !== null && thing.thingTypeName !== thingTypeName) return false;
    if (attributeName === null) return true;
    const value = thing.attributes[attributeName];
    if (value === undefined) return false;
    if (attributeValue === null) return true;
    return prefix ? value.startsWith(attributeValue) : value === attributeValue;
  });
  const { page, nextToken } = paginate(
    things,
    request.query.get("nextToken"),
    maxResults,
    (t) => t.thingName,
  );
  return {
    things: page.map((thing) => ({
      thingName: thing.thingName,
      ...(thing.thingTypeName ? { thingTypeName: thing.thingTypeName } : {}),
      thingArn: thing.thingArn,
      attributes: thing.attributes,
      version: thing.version,
    })),
    ...(nextToken ? { nextToken } : {}),
  };
}

/**
 * A principal ARN from the `x-amzn-principal` header; a certificate ARN must name a known
 * certificate and becomes its stored ARN (whatever region the caller wrote).
 */
function principal(context: EmulatorContext, request: OperationRequest): string {
  const value = requiredHeader(request.headers, "x-amzn-principal");
  const certificateId = certificateIdFromArn(value);
  if (certificateId === undefined) return value;
  const certificate = context.state.certificate(certificateId);
  if (!certificate) throw notFound(`Certificate ${certificateId} does not exist.`);
  return certificate.certificateArn;
}

/** The principal header as stored, without requiring it to exist (detach and list are lenient). */
function storedPrincipal(context: EmulatorContext, request: OperationRequest): string {
  const value = requiredHeader(request.headers, "x-amzn-principal");
  const certificateId = certificateIdFromArn(value);
  const certificate = certificateId === undefined ? undefined : context.state.certificate(certificateId);
  return certificate?.certificateArn ?? value;
}

function attachThingPrincipal(context: EmulatorContext, request: OperationRequest) {
  const thing = existing(context, request);
  context.state.attachThingPrincipal(thing.thingName, principal(context, request));
}

function detachThingPrincipal(context: EmulatorContext, request: OperationRequest) {
  const thing = existing(context, request);
  context.state.detachThingPrincipal(thing.thingName, storedPrincipal(context, request));
}

function listThingPrincipals(context: EmulatorContext, request: OperationRequest) {
  const thing = existing(context, request);
  const maxResults = queryInteger(request.query, "maxResults", 1, 250) ?? 25;
  const { page, nextToken } = paginate(
    context.state.thingPrincipals(thing.thingName),
    request.query.get("nextToken"),
    maxResults,
    (arn) => arn,
  );
  return { principals: page, ...(nextToken ? { nextToken } : {}) };
}

function listPrincipalThings(context: EmulatorContext, request: OperationRequest) {
  const value = storedPrincipal(context, request);
  const maxResults = queryInteger(request.query, "maxResults", 1, 250) ?? 25;
  const { page, nextToken } = paginate(
    context.state.principalThings(value),
    request.query.get("nextToken"),
    maxResults,
    (name) => name,
  );
  return { things: page, ...(nextToken ? { nextToken } : {}) };
}

/** Routes of the thing operations. */
export const thingRoutes: Route[] = [
  { operation: "CreateThing", method: "POST", path: "/things/{thingName}", handler: createThing },
  { operation: "DescribeThing", method: "GET", path: "/things/{thingName}", handler: describeThing },
  { operation: "UpdateThing", method: "PATCH", path: "/things/{thingName}", handler: updateThing },
  { operation: "DeleteThing", method: "DELETE", path: "/things/{thingName}", handler: deleteThing },
  { operation: "ListThings", method: "GET", path: "/things", handler: listThings },
  {
    operation: "AttachThingPrincipal",
    method: "PUT",
    path: "/things/{thingName}/principals",
    handler: attachThingPrincipal,
  },
  {
    operation: "DetachThingPrincipal",
    method: "DELETE",
    path: "/things/{thingName}/principals",
    handler: detachThingPrincipal,
  },
  {
    operation: "ListThingPrincipals",
    method: "GET",
    path: "/things/{thingName}/principals",
    handler: listThingPrincipals,
  },
  {
    operation: "ListPrincipalThings",
    method: "GET",
    path: "/principals/things",
    handler: listPrincipalThings,
  },
];
