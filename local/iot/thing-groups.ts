import { randomUUID } from "node:crypto";
import * as z from "zod";
import { thingGroupArn, thingGroupNameFromArn, thingNameFromArn } from "./arns.ts";
import { alreadyExists, IotServiceError, invalidRequest, notFound } from "./errors.ts";
import type { ThingGroupRecord } from "./iot-state.ts";
import { type EmulatorContext, epochSeconds, type OperationRequest, type Route } from "./operation.ts";
import {
  attributesSchema,
  paginate,
  parseInput,
  queryBoolean,
  queryInteger,
  thingNameSchema,
} from "./validation.ts";

/**
 * Static thing groups (https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html):
 * a hierarchy of groups; a thing is in at most 10 groups and in at most one group of a hierarchy.
 * Membership is kept on the thing (`ThingRecord.thingGroups`). Dynamic groups are not emulated.
 */
const MAX_GROUPS_PER_THING = 10;

const groupNameSchema = thingNameSchema;

const createBody = z.object({
  parentGroupName: groupNameSchema.optional(),
  thingGroupProperties: z
    .object({
      thingGroupDescription: z.string().max(2028).optional(),
      attributePayload: z
        .object({ attributes: attributesSchema.optional(), merge: z.boolean().optional() })
        .optional(),
    })
    .optional(),
  tags: z.array(z.object({ Key: z.string(), Value: z.string().optional() })).optional(),
});

const membershipBody = z.object({
  thingGroupName: groupNameSchema.optional(),
  thingGroupArn: z.string().optional(),
  thingName: thingNameSchema.optional(),
  thingArn: z.string().optional(),
  overrideDynamicGroups: z.boolean().optional(),
});

function groupLabel(request: OperationRequest): string {
  return parseInput(groupNameSchema, request.labels.thingGroupName, "thingGroupName");
}

function existing(context: EmulatorContext, name: string): ThingGroupRecord {
  const group = context.state.thingGroup(name);
  if (!group) throw notFound(`Thing group ${name} does not exist.`);
  return group;
}

/** The group's ancestors, root first. */
function ancestors(context: EmulatorContext, group: ThingGroupRecord): ThingGroupRecord[] {
  const chain: ThingGroupRecord[] = [];
  let parent = group.parentGroupName;
  while (parent !== undefined) {
    const record = context.state.thingGroup(parent);
    if (!record || chain.some((g) => g.thingGroupName === parent)) break;
    chain.unshift(record);
    parent = record.parentGroupName;
  }
  return chain;
}

/** The names of a group and all its descendants. */
function subtree(context: EmulatorContext, name: string): Set<string> {
  const all = context.state.listThingGroups();
  const names = new Set([name]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const g of all) {
      if (g.parentGroupName !== undefined && names.has(g.parentGroupName) && !names.has(g.thingGroupName)) {
        names.add(g.thingGroupName);
        grew = true;
      }
    }
  }
  return names;
}

const rootOf = (context: EmulatorContext, group: ThingGroupRecord) =>
  (ancestors(context, group)[0] ?? group).thingGroupName;

/**
 * CreateThingGroup (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThingGroup.html).
 * Its errors do not include ResourceNotFoundException: an unknown parent is an invalid request.
 */
function createThingGroup(context: EmulatorContext, request: OperationRequest) {
  const name = groupLabel(request);
  const body = parseInput(createBody, request.body ?? {});
  if (body.parentGroupName !== undefined && !context.state.thingGroup(body.parentGroupName)) {
    throw invalidRequest(`Parent thing group ${body.parentGroupName} does not exist.`);
  }
  const properties = body.thingGroupProperties;
  const record: ThingGroupRecord = {
    thingGroupName: name,
    thingGroupId: randomUUID(),
    thingGroupArn: thingGroupArn(context.scope, name),
    ...(body.parentGroupName !== undefined ? { parentGroupName: body.parentGroupName } : {}),
    ...(properties?.thingGroupDescription !== undefined
      ? { description: properties.thingGroupDescription }
      : {}),
    attributes: properties?.attributePayload?.attributes ?? {},
    version: 1,
    creationDate: context.now(),
  };
  if (!context.state.insertThingGroup(record)) {
    const current = context.state.thingGroup(name);
    throw alreadyExists(`Thing group ${name} already exists.`, name, current?.thingGroupArn);
  }
  return { thingGroupName: name, thingGroupArn: record.thingGroupArn, thingGroupId: record.thingGroupId };
}

function describeThingGroup(context: EmulatorContext, request: OperationRequest) {
  const group = existing(context, groupLabel(request));
  return {
    thingGroupName: group.thingGroupName,
    thingGroupId: group.thingGroupId,
    thingGroupArn: group.thingGroupArn,
    version: group.version,
    thingGroupProperties: {
      ...(group.description !== undefined ? { thingGroupDescription: group.description } : {}),
      attributePayload: { attributes: group.attributes },
    },
    thingGroupMetadata: {
      ...(group.parentGroupName !== undefined ? { parentGroupName: group.parentGroupName } : {}),
      rootToParentThingGroups: ancestors(context, group).map((g) => ({
        groupName: g.thingGroupName,
        groupArn: g.thingGroupArn,
      })),
      creationDate: epochSeconds(group.creationDate),
    },
  };
}

/**
 * ListThingGroups: `parentGroup` lists its descendants (children only unless `recursive`), else
 * every group (root groups only when `recursive` is false); `namePrefixFilter` narrows it.
 */
function listThingGroups(context: EmulatorContext, request: OperationRequest) {
  const maxResults = queryInteger(request.query, "maxResults", 1, 250) ?? 50;
  const parent = request.query.get("parentGroup");
  const prefix = request.query.get("namePrefixFilter");
  const recursive = queryBoolean(request.query, "recursive");
  let groups = context.state.listThingGroups();
  if (parent !== null) {
    existing(context, parent);
    const below = subtree(context, parent);
    groups = groups.filter((g) =>
      recursive ? below.has(g.thingGroupName) && g.thingGroupName !== parent : g.parentGroupName === parent,
    );
  } else if (recursive === false) {
    groups = groups.filter((g) => g.parentGroupName === undefined);
  }
  if (prefix !== null) groups = groups.filter((g) => g.thingGroupName.startsWith(prefix));
  const { page, nextToken } = paginate(
    groups,
    request.query.get("nextToken"),
    maxResults,
    (g) => g.thingGroupName,
  );
  return {
    thingGroups: page.map((g) => ({ groupName: g.thingGroupName, groupArn: g.thingGroupArn })),
    ...(nextToken ? { nextToken } : {}),
  };
}

/**
 * DeleteThingGroup: a group that does not exist is deleted already (the operation's errors have
 * no ResourceNotFoundException: https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThingGroup.html);
 * a group with child groups is refused; its things leave it.
 */
function deleteThingGroup(context: EmulatorContext, request: OperationRequest) {
  const name = groupLabel(request);
  const group = context.state.thingGroup(name);
  if (!group) return;
  const expected = queryInteger(request.query, "expectedVersion", 0, Number.MAX_SAFE_INTEGER);
  if (expected !== undefined && expected !== group.version) {
    throw new IotServiceError(
      "VersionConflictException",
      `Thing group ${name} is at version ${group.version}.`,
    );
  }
  if (context.state.listThingGroups().some((g) => g.parentGroupName === name)) {
    throw invalidRequest(`Thing group ${name} has child groups; delete them first.`);
  }
  context.state.deleteThingGroup(name);
}

/** The group and thing a membership request names (by name or ARN); ResourceNotFoundException if missing. */
function membership(context: EmulatorContext, request: OperationRequest) {
  const body = parseInput(membershipBody, request.body ?? {});
  const groupName =
    body.thingGroupName ?? (body.thingGroupArn ? thingGroupNameFromArn(body.thingGroupArn) : undefined);
  const thingName = body.thingName ?? (body.thingArn ? thingNameFromArn(body.thingArn) : undefined);
  if (groupName === undefined) throw invalidRequest("thingGroupName or a valid thingGroupArn is required.");
  if (thingName === undefined) throw invalidRequest("thingName or a valid thingArn is required.");
  const group = existing(context, groupName);
  const thing = context.state.thing(thingName);
  if (!thing) throw notFound(`Thing ${thingName} does not exist.`);
  return { group, thing };
}

/** AddThingToThingGroup (https://docs.aws.amazon.com/iot/latest/apireference/API_AddThingToThingGroup.html). */
function addThingToThingGroup(context: EmulatorContext, request: OperationRequest) {
  const { group, thing } = membership(context, request);
  const current = thing.thingGroups ?? [];
  if (current.includes(group.thingGroupName)) return;
  if (current.length >= MAX_GROUPS_PER_THING) {
    throw invalidRequest(`Thing ${thing.thingName} is in ${MAX_GROUPS_PER_THING} groups already.`);
  }
  const root = rootOf(context, group);
  const sameHierarchy = current.find((name) => {
    const other = context.state.thingGroup(name);
    return other !== undefined && rootOf(context, other) === root;
  });
  if (sameHierarchy !== undefined) {
    throw invalidRequest(
      `Thing ${thing.thingName} is in ${sameHierarchy}, of the same hierarchy as ${group.thingGroupName}.`,
    );
  }
  context.state.setThingGroups(thing.thingName, [...current, group.thingGroupName]);
}

function removeThingFromThingGroup(context: EmulatorContext, request: OperationRequest) {
  const { group, thing } = membership(context, request);
  const current = thing.thingGroups ?? [];
  if (!current.includes(group.thingGroupName)) return;
  context.state.setThingGroups(
    thing.thingName,
    current.filter((name) => name !== group.thingGroupName),
  );
}

/** ListThingsInThingGroup; `recursive` adds the things of its descendant groups. */
function listThingsInThingGroup(context: EmulatorContext, request: OperationRequest) {
  const group = existing(context, groupLabel(request));
  const maxResults = queryInteger(request.query, "maxResults", 1, 250) ?? 50;
  const groups = queryBoolean(request.query, "recursive")
    ? subtree(context, group.thingGroupName)
    : new Set([group.thingGroupName]);
  const things = context.state
    .listThings()
    .filter((t) => (t.thingGroups ?? []).some((name) => groups.has(name)))
    .map((t) => t.thingName);
  const { page, nextToken } = paginate(things, request.query.get("nextToken"), maxResults, (n) => n);
  return { things: page, ...(nextToken ? { nextToken } : {}) };
}

function listThingGroupsForThing(context: EmulatorContext, request: OperationRequest) {
  const thingName = parseInput(thingNameSchema, request.labels.thingName, "thingName");
  const thing = context.state.thing(thingName);
  if (!thing) throw notFound(`Thing ${thingName} does not exist.`);
  const maxResults = queryInteger(request.query, "maxResults", 1, 250) ?? 25;
  const groups = (thing.thingGroups ?? []).flatMap((name) => {
    const group = context.state.thingGroup(name);
    return group ? [{ groupName: group.thingGroupName, groupArn: group.thingGroupArn }] : [];
  });
  const { page, nextToken } = paginate(
    groups,
    request.query.get("nextToken"),
    maxResults,
    (g) => g.groupName,
  );
  return { thingGroups: page, ...(nextToken ? { nextToken } : {}) };
}

/** Routes of the thing group operations. */
export const thingGroupRoutes: Route[] = [
  {
    operation: "AddThingToThingGroup",
    method: "PUT",
    path: "/thing-groups/addThingToThingGroup",
    handler: addThingToThingGroup,
  },
  {
    operation: "RemoveThingFromThingGroup",
    method: "PUT",
    path: "/thing-groups/removeThingFromThingGroup",
    handler: removeThingFromThingGroup,
  },
  {
    operation: "CreateThingGroup",
    method: "POST",
    path: "/thing-groups/{thingGroupName}",
    handler: createThingGroup,
  },
  {
    operation: "DescribeThingGroup",
    method: "GET",
    path: "/thing-groups/{thingGroupName}",
    handler: describeThingGroup,
  },
  {
    operation: "DeleteThingGroup",
    method: "DELETE",
    path: "/thing-groups/{thingGroupName}",
    handler: deleteThingGroup,
  },
  { operation: "ListThingGroups", method: "GET", path: "/thing-groups", handler: listThingGroups },
  {
    operation: "ListThingsInThingGroup",
    method: "GET",
    path: "/thing-groups/{thingGroupName}/things",
    handler: listThingsInThingGroup,
  },
  {
    operation: "ListThingGroupsForThing",
    method: "GET",
    path: "/things/{thingName}/thing-groups",
    handler: listThingGroupsForThing,
  },
];
