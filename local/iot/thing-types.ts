import { randomUUID } from "node:crypto";
import * as z from "zod";
import { thingTypeArn } from "./arns.ts";
import { alreadyExists, invalidRequest, notFound } from "./errors.ts";
import type { ThingTypeRecord } from "./iot-state.ts";
import { type EmulatorContext, epochSeconds, type OperationRequest, type Route } from "./operation.ts";
import { paginate, parseInput, queryInteger, thingNameSchema } from "./validation.ts";

/** Thing type names follow the thing name rules. */
const thingTypeNameSchema = thingNameSchema;

const createBody = z.object({
  thingTypeProperties: z
    .object({
      thingTypeDescription: z.string().max(2028).optional(),
      searchableAttributes: z.array(z.string().max(128)).max(3).optional(),
    })
    .optional(),
  tags: z.array(z.object({ Key: z.string(), Value: z.string().optional() })).optional(),
});

const deprecateBody = z.object({ undoDeprecate: z.boolean().optional() });

/**
 * The thing type a thing may be given: it exists (ResourceNotFoundException) and is not deprecated
 * (InvalidRequestException): "you can't associate new things with a deprecated thing type"
 * (https://docs.aws.amazon.com/iot/latest/developerguide/deprecate-thing-types.html). CreateThing
 * and UpdateThing list ResourceNotFoundException for this
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html).
 */
export function usableThingType(context: EmulatorContext, name: string): ThingTypeRecord {
  const type = context.state.thingType(name);
  if (!type) throw notFound(`Thing type ${name} does not exist.`);
  if (type.deprecated) throw invalidRequest(`Thing type ${name} is deprecated.`);
  return type;
}

function typeName(request: OperationRequest): string {
  return parseInput(thingTypeNameSchema, request.labels.thingTypeName, "thingTypeName");
}

function existing(context: EmulatorContext, request: OperationRequest): ThingTypeRecord {
  const name = typeName(request);
  const type = context.state.thingType(name);
  if (!type) throw notFound(`Thing type ${name} does not exist.`);
  return type;
}

/** DescribeThingType's answer, also ListThingTypes' items (ThingTypeDefinition). */
function describe(type: ThingTypeRecord) {
  return {
    thingTypeName: type.thingTypeName,
    thingTypeArn: type.thingTypeArn,
    thingTypeProperties: {
      ...(type.description !== undefined ? { thingTypeDescription: type.description } : {}),
      ...(type.searchableAttributes ? { searchableAttributes: type.searchableAttributes } : {}),
    },
    thingTypeMetadata: {
      deprecated: type.deprecated,
      ...(type.deprecationDate !== undefined ? { deprecationDate: epochSeconds(type.deprecationDate) } : {}),
      creationDate: epochSeconds(type.creationDate),
    },
  };
}

/** CreateThingType (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThingType.html). */
function createThingType(context: EmulatorContext, request: OperationRequest) {
  const name = typeName(request);
  const body = parseInput(createBody, request.body ?? {});
  const properties = body.thingTypeProperties;
  const record: ThingTypeRecord = {
    thingTypeName: name,
    thingTypeId: randomUUID(),
    thingTypeArn: thingTypeArn(context.scope, name),
    ...(properties?.thingTypeDescription !== undefined
      ? { description: properties.thingTypeDescription }
      : {}),
    ...(properties?.searchableAttributes ? { searchableAttributes: properties.searchableAttributes } : {}),
    deprecated: false,
    creationDate: context.now(),
  };
  if (!context.state.insertThingType(record)) {
    const current = context.state.thingType(name);
    throw alreadyExists(`Thing type ${name} already exists.`, name, current?.thingTypeArn);
  }
  return { thingTypeName: name, thingTypeArn: record.thingTypeArn, thingTypeId: record.thingTypeId };
}

function describeThingType(context: EmulatorContext, request: OperationRequest) {
  const type = existing(context, request);
  return { thingTypeId: type.thingTypeId, ...describe(type) };
}

function listThingTypes(context: EmulatorContext, request: OperationRequest) {
  const maxResults = queryInteger(request.query, "maxResults", 1, 250) ?? 50;
  const only = request.query.get("thingTypeName");
  const { page, nextToken } = paginate(
    context.state.listThingTypes().filter((t) => only === null || t.thingTypeName === only),
    request.query.get("nextToken"),
    maxResults,
    (t) => t.thingTypeName,
  );
  return { thingTypes: page.map(describe), ...(nextToken ? { nextToken } : {}) };
}

/** DeprecateThingType, or undo it (https://docs.aws.amazon.com/iot/latest/apireference/API_DeprecateThingType.html). */
function deprecateThingType(context: EmulatorContext, request: OperationRequest) {
  const type = existing(context, request);
  const { undoDeprecate } = parseInput(deprecateBody, request.body ?? {});
  const next: ThingTypeRecord = { ...type, deprecated: !undoDeprecate };
  if (undoDeprecate) delete next.deprecationDate;
  else next.deprecationDate = context.now();
  context.state.replaceThingType(next);
}

/**
 * DeleteThingType: only a deprecated type that no thing uses
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThingType.html). AWS also asks to
 * wait five minutes after deprecating (https://docs.aws.amazon.com/iot/latest/developerguide/delete-thing-types.html);
 * the emulator does not make tests wait.
 */
function deleteThingType(context: EmulatorContext, request: OperationRequest) {
  const type = existing(context, request);
  if (!type.deprecated) {
    throw invalidRequest(`Thing type ${type.thingTypeName} must be deprecated before it is deleted.`);
  }
  if (context.state.listThings().some((t) => t.thingTypeName === type.thingTypeName)) {
    throw invalidRequest(`Thing type ${type.thingTypeName} is used by things; change their type first.`);
  }
  context.state.deleteThingType(type.thingTypeName);
}

/** Routes of the thing type operations. */
export const thingTypeRoutes: Route[] = [
  {
    operation: "CreateThingType",
    method: "POST",
    path: "/thing-types/{thingTypeName}",
    handler: createThingType,
  },
  {
    operation: "DescribeThingType",
    method: "GET",
    path: "/thing-types/{thingTypeName}",
    handler: describeThingType,
  },
  { operation: "ListThingTypes", method: "GET", path: "/thing-types", handler: listThingTypes },
  {
    operation: "DeprecateThingType",
    method: "POST",
    path: "/thing-types/{thingTypeName}/deprecate",
    handler: deprecateThingType,
  },
  {
    operation: "DeleteThingType",
    method: "DELETE",
    path: "/thing-types/{thingTypeName}",
    handler: deleteThingType,
  },
];
