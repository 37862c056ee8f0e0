import { type EvaluationContext, evaluateString, evaluateValue } from "./intrinsics.ts";
import {
  childPath,
  isObject,
  type JsonObject,
  type JsonValue,
  own,
  preview,
  typeName,
} from "./json-value.ts";
import { TemplateError } from "./template-error.ts";
import type { OverrideAction, PlannedCertificate, PlannedPolicy, PlannedThing } from "./types.ts";

/** Resource types a provisioning template may declare. */
export const RESOURCE_TYPES = ["AWS::IoT::Thing", "AWS::IoT::Certificate", "AWS::IoT::Policy"] as const;
/** One of {@link RESOURCE_TYPES}. */
export type ResourceType = (typeof RESOURCE_TYPES)[number];

const OVERRIDE_ACTIONS: readonly OverrideAction[] = ["DO_NOTHING", "REPLACE", "FAIL", "MERGE"];
const MERGEABLE = new Set(["ThingGroups", "AttributePayload"]);
const RESOURCE_KEYS = new Set(["Type", "Properties", "OverrideSettings"]);

const PROPERTIES: Record<ResourceType, readonly string[]> = {
  "AWS::IoT::Thing": ["ThingName", "AttributePayload", "ThingTypeName", "ThingGroups", "BillingGroup"],
  "AWS::IoT::Certificate": [
    "CertificateSigningRequest",
    "CertificateId",
    "CertificatePem",
    "CACertificatePem",
    "Status",
  ],
  "AWS::IoT::Policy": ["PolicyName", "PolicyDocument"],
};
/** Properties whose behaviour for an existing resource OverrideSettings may set. */
const OVERRIDABLE: Record<ResourceType, readonly string[]> = {
  "AWS::IoT::Thing": ["AttributePayload", "ThingTypeName", "ThingGroups", "BillingGroup"],
  "AWS::IoT::Certificate": ["Status"],
  "AWS::IoT::Policy": [],
};

// AWS IoT's own limits, so a plan never names something CreateThing or CreatePolicy would reject.
const REGISTRY_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
const ATTRIBUTE_KEY = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;
const CERTIFICATE_ID = /^[0-9a-fA-F]{64}$/;
/** AWS IoT's limit for one policy document, in characters. */
export const MAX_POLICY_DOCUMENT_LENGTH = 2048;
const CERTIFICATE_STATUSES = new Set(["ACTIVE", "INACTIVE"]);

/** A resource declaration with its type checked and its properties not yet evaluated. */
export type ResourceDeclaration = {
  logicalId: string;
  path: string;
  type: ResourceType;
  properties: JsonObject;
  overrideSettings: JsonValue | undefined;
};

/** Checks a resource's shape: known keys, a supported Type, Properties with known names only. */
export function readResource(logicalId: string, resource: JsonValue): ResourceDeclaration {
  const path = childPath("Resources", logicalId);
  if (!isObject(resource))
    throw new TemplateError(path, `a resource must be an object, got ${typeName(resource)}`);
  for (const key of Object.keys(resource)) {
    if (!RESOURCE_KEYS.has(key)) {
      throw new TemplateError(
        childPath(path, key),
        "unknown resource attribute; allowed: Type, Properties, OverrideSettings",
      );
    }
  }
  const type = own(resource, "Type");
  if (typeof type !== "string" || !(RESOURCE_TYPES as readonly string[]).includes(type)) {
    throw new TemplateError(
      childPath(path, "Type"),
      `unknown resource type ${preview(type ?? null)}; supported: ${RESOURCE_TYPES.join(", ")}`,
    );
  }
  const resourceType = type as ResourceType;
  const propertiesPath = childPath(path, "Properties");
  const properties = own(resource, "Properties");
  if (!isObject(properties)) {
    throw new TemplateError(
      propertiesPath,
      `${resourceType} needs a Properties object, got ${typeName(properties ?? null)}`,
    );
  }
  const known = PROPERTIES[resourceType];
  for (const key of Object.keys(properties)) {
    if (!known.includes(key)) {
      throw new TemplateError(
        childPath(propertiesPath, key),
        `unknown property of ${resourceType}; allowed: ${known.join(", ")}`,
      );
    }
  }
  return {
    logicalId,
    path,
    type: resourceType,
    properties,
    overrideSettings: own(resource, "OverrideSettings"),
  };
}

/** Evaluates an `AWS::IoT::Thing`. */
export function planThing(declaration: ResourceDeclaration, context: EvaluationContext): PlannedThing {
  const { properties } = declaration;
  const propertiesPath = childPath(declaration.path, "Properties");
  const at = (key: string) => childPath(propertiesPath, key);
  const thingNameNode = own(properties, "ThingName");
  if (thingNameNode === undefined)
    throw new TemplateError(at("ThingName"), "AWS::IoT::Thing needs a ThingName");
  const thing: Omit<PlannedThing, "overrideSettings"> & Partial<PlannedThing> = {
    logicalId: declaration.logicalId,
    thingName: registryName(
      evaluateString(thingNameNode, at("ThingName"), context),
      at("ThingName"),
      "thing name",
    ),
  };
  const attributes = own(properties, "AttributePayload");
  if (attributes !== undefined)
    thing.attributePayload = attributePayload(attributes, at("AttributePayload"), context);
  const thingType = own(properties, "ThingTypeName");
  if (thingType !== undefined) {
    const path = at("ThingTypeName");
    thing.thingTypeName = registryName(evaluateString(thingType, path, context), path, "thing type name");
  }
  const groups = own(properties, "ThingGroups");
  if (groups !== undefined) thing.thingGroups = thingGroups(groups, at("ThingGroups"), context);
  const billingGroup = own(properties, "BillingGroup");
  if (billingGroup !== undefined) {
    const path = at("BillingGroup");
    thing.billingGroup = registryName(
      evaluateString(billingGroup, path, context),
      path,
      "billing group name",
    );
  }
  return { ...thing, overrideSettings: readOverrideSettings(declaration) };
}

/** Evaluates an `AWS::IoT::Certificate`: exactly one source, Status ACTIVE unless INACTIVE. */
export function planCertificate(
  declaration: ResourceDeclaration,
  context: EvaluationContext,
): PlannedCertificate {
  const { properties } = declaration;
  const propertiesPath = childPath(declaration.path, "Properties");
  const at = (key: string) => childPath(propertiesPath, key);
  const sources = ["CertificateSigningRequest", "CertificateId", "CertificatePem"].filter(
    (key) => own(properties, key) !== undefined,
  );
  if (sources.length !== 1) {
    throw new TemplateError(
      propertiesPath,
      sources.length === 0
        ? "AWS::IoT::Certificate needs one of CertificateSigningRequest, CertificateId, CertificatePem"
        : `AWS::IoT::Certificate takes exactly one of CertificateSigningRequest, CertificateId, CertificatePem; found ${sources.join(", ")}`,
    );
  }
  const caPem = own(properties, "CACertificatePem");
  if (caPem !== undefined && sources[0] !== "CertificatePem") {
    throw new TemplateError(
      at("CACertificatePem"),
      "CACertificatePem is only allowed together with CertificatePem",
    );
  }
  const statusNode = own(properties, "Status");
  let status = "ACTIVE";
  if (statusNode !== undefined) {
    const written = evaluateString(statusNode, at("Status"), context);
    status = written.toUpperCase();
    if (!CERTIFICATE_STATUSES.has(status)) {
      throw new TemplateError(at("Status"), `Status must be ACTIVE or INACTIVE, got ${preview(written)}`);
    }
  }
  const certificate: Omit<PlannedCertificate, "status" | "overrideSettings"> = {
    logicalId: declaration.logicalId,
  };
  const source = sources[0] as string;
  const value = evaluateString(own(properties, source) as JsonValue, at(source), context);
  if (source === "CertificateId") {
    if (!CERTIFICATE_ID.test(value)) {
      throw new TemplateError(at(source), `a certificate id is 64 hex characters, got ${preview(value)}`);
    }
    certificate.certificateId = value;
  } else {
    if (value.trim() === "") throw new TemplateError(at(source), `${source} must not be empty`);
    if (source === "CertificateSigningRequest") certificate.certificateSigningRequest = value;
    else certificate.certificatePem = value;
  }
  if (caPem !== undefined) {
    const ca = evaluateString(caPem, at("CACertificatePem"), context);
    if (ca.trim() === "")
      throw new TemplateError(at("CACertificatePem"), "CACertificatePem must not be empty");
    certificate.caCertificatePem = ca;
  }
  return { ...certificate, status, overrideSettings: readOverrideSettings(declaration) };
}

/**
 * Evaluates an `AWS::IoT::Policy`: PolicyName (an existing policy) or PolicyDocument (a JSON
 * string or object, returned as compact JSON), not both. Strings inside the document are kept as
 * written, so policy variables like `${iot:Connection.Thing.ThingName}` reach AWS IoT untouched.
 */
export function planPolicy(declaration: ResourceDeclaration, context: EvaluationContext): PlannedPolicy {
  const { properties } = declaration;
  const propertiesPath = childPath(declaration.path, "Properties");
  const at = (key: string) => childPath(propertiesPath, key);
  if (declaration.overrideSettings !== undefined) {
    throw new TemplateError(
      childPath(declaration.path, "OverrideSettings"),
      "OverrideSettings are not available for policies",
    );
  }
  const nameNode = own(properties, "PolicyName");
  const documentNode = own(properties, "PolicyDocument");
  if ((nameNode === undefined) === (documentNode === undefined)) {
    throw new TemplateError(
      propertiesPath,
      nameNode === undefined
        ? "AWS::IoT::Policy needs PolicyName or PolicyDocument"
        : "AWS::IoT::Policy takes PolicyName or PolicyDocument, not both",
    );
  }
  if (nameNode !== undefined) {
    const policyName = evaluateString(nameNode, at("PolicyName"), context);
    if (!POLICY_NAME.test(policyName)) {
      throw new TemplateError(
        at("PolicyName"),
        `${preview(policyName)} is not a valid policy name ([\\w+=,.@-], 1 to 128)`,
      );
    }
    return { logicalId: declaration.logicalId, policyName };
  }
  return {
    logicalId: declaration.logicalId,
    policyDocument: policyDocument(documentNode as JsonValue, at("PolicyDocument"), context),
  };
}

function policyDocument(node: JsonValue, path: string, context: EvaluationContext): string {
  let document = evaluateValue(node, path, context);
  if (typeof document === "string") {
    try {
      document = JSON.parse(document) as JsonValue;
    } catch (error) {
      throw new TemplateError(path, `PolicyDocument is not valid JSON (${(error as Error).message})`, {
        cause: error,
      });
    }
  }
  if (!isObject(document)) {
    throw new TemplateError(path, `PolicyDocument must be a JSON object, got ${typeName(document)}`);
  }
  if (!Object.hasOwn(document, "Statement")) throw new TemplateError(path, "PolicyDocument has no Statement");
  const text = JSON.stringify(document);
  if (text.length > MAX_POLICY_DOCUMENT_LENGTH) {
    throw new TemplateError(
      path,
      `PolicyDocument has ${text.length} characters; the limit is ${MAX_POLICY_DOCUMENT_LENGTH}`,
    );
  }
  return text;
}

function registryName(value: string, path: string, what: string): string {
  if (!REGISTRY_NAME.test(value)) {
    throw new TemplateError(
      path,
      `${preview(value)} is not a valid ${what} ([a-zA-Z0-9:_-], 1 to 128 characters)`,
    );
  }
  return value;
}

function attributePayload(node: JsonValue, path: string, context: EvaluationContext): Record<string, string> {
  const payload = evaluateValue(node, path, context);
  if (!isObject(payload))
    throw new TemplateError(path, `AttributePayload must be an object, got ${typeName(payload)}`);
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(payload)) {
    const valuePath = childPath(path, key);
    if (!ATTRIBUTE_KEY.test(key)) {
      throw new TemplateError(
        valuePath,
        "not a valid attribute name ([a-zA-Z0-9_.,@/:#-], 1 to 128 characters)",
      );
    }
    const text = scalar(value, valuePath);
    if (!ATTRIBUTE_VALUE.test(text)) {
      throw new TemplateError(
        valuePath,
        `${preview(text)} is not a valid attribute value ([a-zA-Z0-9_.,@/:#=[]-], up to 800 characters)`,
      );
    }
    entries.push([key, text]);
  }
  return Object.fromEntries(entries);
}

function thingGroups(node: JsonValue, path: string, context: EvaluationContext): string[] {
  const groups = evaluateValue(node, path, context);
  if (!Array.isArray(groups))
    throw new TemplateError(path, `ThingGroups must be a list, got ${typeName(groups)}`);
  return groups.map((group, index) => {
    const groupPath = childPath(path, index);
    if (typeof group !== "string")
      throw new TemplateError(groupPath, `a thing group name must be a string, got ${typeName(group)}`);
    return registryName(group, groupPath, "thing group name");
  });
}

/** A flat value: strings as they are, numbers and booleans written out. */
export function scalar(value: JsonValue, path: string): string {
  if (typeof value === "string") return value;
  if ((typeof value === "number" && Number.isFinite(value)) || typeof value === "boolean")
    return String(value);
  throw new TemplateError(path, `expected a flat value (string, number or boolean), got ${typeName(value)}`);
}

function readOverrideSettings(declaration: ResourceDeclaration): Record<string, OverrideAction> {
  const node = declaration.overrideSettings;
  if (node === undefined) return {};
  const path = childPath(declaration.path, "OverrideSettings");
  if (!isObject(node)) throw new TemplateError(path, `must be an object, got ${typeName(node)}`);
  const allowed = OVERRIDABLE[declaration.type];
  const entries: [string, OverrideAction][] = [];
  for (const [property, action] of Object.entries(node)) {
    const actionPath = childPath(path, property);
    if (!allowed.includes(property)) {
      throw new TemplateError(
        actionPath,
        `${declaration.type} has no overridable property "${property}"; allowed: ${allowed.join(", ")}`,
      );
    }
    if (typeof action !== "string" || !(OVERRIDE_ACTIONS as readonly string[]).includes(action)) {
      throw new TemplateError(
        actionPath,
        `must be one of ${OVERRIDE_ACTIONS.join(", ")}, got ${preview(action)}`,
      );
    }
    if (action === "MERGE" && !MERGEABLE.has(property)) {
      throw new TemplateError(actionPath, "MERGE is only valid for ThingGroups and AttributePayload");
    }
    entries.push([property, action as OverrideAction]);
  }
  return Object.fromEntries(entries);
}
