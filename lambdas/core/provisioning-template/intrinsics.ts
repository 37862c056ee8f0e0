import { childPath, isObject, type JsonValue, preview, typeName } from "./json-value.ts";
import { TemplateError } from "./template-error.ts";

/** The intrinsic functions the provisioning template language knows. */
export const INTRINSIC_FUNCTIONS = [
  "Ref",
  "Fn::Join",
  "Fn::Select",
  "Fn::Split",
  "Fn::FindInMap",
  "Fn::Sub",
] as const;

/** Deeper nesting than this is refused, so no input can exhaust the stack. */
export const MAX_NESTING_DEPTH = 64;

/** A resolved parameter: a string, or a list for `CommaDelimitedList` parameters. */
export type ParameterValue = string | string[];
/** `Mappings`: map name -> top-level key -> second-level key -> value. */
export type Mappings = ReadonlyMap<string, ReadonlyMap<string, ReadonlyMap<string, ParameterValue>>>;

/** What intrinsic functions can see while a template is evaluated. */
export type EvaluationContext = {
  parameters: ReadonlyMap<string, ParameterValue>;
  mappings: Mappings;
};

/**
 * A `${name}` in Fn::Sub that names no variable and no parameter but looks like an AWS IoT policy
 * variable (`iot:Connection.Thing.ThingName`, `iot:ClientId`, `aws:SourceIp`,
 * `credentials-iot:ThingName`, `iot:Certificate.Subject.CommonName`, ...). It is kept as written:
 * AWS IoT resolves it later, when the policy is evaluated for a connection.
 */
const POLICY_VARIABLE = /^[A-Za-z][A-Za-z0-9-]*:[A-Za-z]/;

/**
 * Evaluates every intrinsic function in `node` and returns plain JSON. Plain strings are never
 * touched: only `Fn::Sub` substitutes `${...}`.
 */
export function evaluateValue(
  node: JsonValue,
  path: string,
  context: EvaluationContext,
  depth = 0,
): JsonValue {
  if (depth > MAX_NESTING_DEPTH) {
    throw new TemplateError(path, `nesting is deeper than ${MAX_NESTING_DEPTH} levels`);
  }
  if (Array.isArray(node)) {
    return node.map((item, index) => evaluateValue(item, childPath(path, index), context, depth + 1));
  }
  if (!isObject(node)) return node;
  const keys = Object.keys(node);
  const intrinsic = keys.find(isIntrinsicKey);
  if (intrinsic !== undefined) {
    if (keys.length !== 1) {
      throw new TemplateError(
        path,
        `an intrinsic function object must have exactly one key, found ${keys.map((k) => `"${k}"`).join(", ")}`,
      );
    }
    return callIntrinsic(
      intrinsic,
      node[intrinsic] as JsonValue,
      childPath(path, intrinsic),
      context,
      depth + 1,
    );
  }
  return Object.fromEntries(
    keys.map((key) => [key, evaluateValue(node[key] as JsonValue, childPath(path, key), context, depth + 1)]),
  );
}

/** Evaluates `node` and requires a string (numbers are written out as strings). */
export function evaluateString(node: JsonValue, path: string, context: EvaluationContext, depth = 0): string {
  return requireString(evaluateValue(node, path, context, depth), path);
}

function isIntrinsicKey(key: string): boolean {
  return key === "Ref" || key.startsWith("Fn::");
}

function requireString(value: JsonValue, path: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  throw new TemplateError(path, `expected a string, got ${typeName(value)} ${preview(value)}`);
}

function requireList(value: JsonValue, path: string): JsonValue[] {
  if (Array.isArray(value)) return value;
  throw new TemplateError(path, `expected a list, got ${typeName(value)} ${preview(value)}`);
}

function argumentList(args: JsonValue, name: string, arity: number, path: string): JsonValue[] {
  if (!Array.isArray(args) || args.length !== arity) {
    throw new TemplateError(path, `${name} takes a list of ${arity} arguments, got ${preview(args)}`);
  }
  return args;
}

function callIntrinsic(
  name: string,
  args: JsonValue,
  path: string,
  context: EvaluationContext,
  depth: number,
): JsonValue {
  switch (name) {
    case "Ref":
      return ref(args, path, context);
    case "Fn::Join":
      return join(args, path, context, depth);
    case "Fn::Select":
      return select(args, path, context, depth);
    case "Fn::Split":
      return split(args, path, context, depth);
    case "Fn::FindInMap":
      return findInMap(args, path, context, depth);
    case "Fn::Sub":
      return sub(args, path, context, depth);
    default:
      throw new TemplateError(
        path,
        `unknown intrinsic function "${name}"; supported: ${INTRINSIC_FUNCTIONS.join(", ")}`,
      );
  }
}

function ref(args: JsonValue, path: string, context: EvaluationContext): JsonValue {
  if (typeof args !== "string") {
    throw new TemplateError(path, `Ref takes a parameter name, got ${typeName(args)} ${preview(args)}`);
  }
  const value = context.parameters.get(args);
  if (value === undefined) {
    throw new TemplateError(path.replace(/\.Ref$/, ""), `Ref to unknown parameter "${args}"`);
  }
  return typeof value === "string" ? value : [...value];
}

function join(args: JsonValue, path: string, context: EvaluationContext, depth: number): string {
  const [delimiterNode, listNode] = argumentList(args, "Fn::Join", 2, path) as [JsonValue, JsonValue];
  const delimiter = evaluateString(delimiterNode, childPath(path, 0), context, depth);
  const listPath = childPath(path, 1);
  const list = requireList(evaluateValue(listNode, listPath, context, depth), listPath);
  return list.map((item, index) => requireString(item, childPath(listPath, index))).join(delimiter);
}

function select(args: JsonValue, path: string, context: EvaluationContext, depth: number): JsonValue {
  const [indexNode, listNode] = argumentList(args, "Fn::Select", 2, path) as [JsonValue, JsonValue];
  const indexPath = childPath(path, 0);
  const indexValue = evaluateValue(indexNode, indexPath, context, depth);
  const index =
    typeof indexValue === "number"
      ? indexValue
      : typeof indexValue === "string" && /^\d+$/.test(indexValue)
        ? Number(indexValue)
        : Number.NaN;
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new TemplateError(
      indexPath,
      `Fn::Select needs a non-negative integer index, got ${preview(indexValue)}`,
    );
  }
  const listPath = childPath(path, 1);
  const list = requireList(evaluateValue(listNode, listPath, context, depth), listPath);
  if (index >= list.length) {
    throw new TemplateError(indexPath, `index ${index} is out of range for a list of ${list.length}`);
  }
  const selected = list[index] as JsonValue;
  if (selected === null)
    throw new TemplateError(childPath(listPath, index), "Fn::Select picked a null value");
  return selected;
}

function split(args: JsonValue, path: string, context: EvaluationContext, depth: number): string[] {
  const [delimiterNode, sourceNode] = argumentList(args, "Fn::Split", 2, path) as [JsonValue, JsonValue];
  const delimiter = evaluateString(delimiterNode, childPath(path, 0), context, depth);
  if (delimiter === "") throw new TemplateError(childPath(path, 0), "Fn::Split needs a non-empty delimiter");
  return evaluateString(sourceNode, childPath(path, 1), context, depth).split(delimiter);
}

function findInMap(args: JsonValue, path: string, context: EvaluationContext, depth: number): JsonValue {
  const [mapNode, topNode, secondNode] = argumentList(args, "Fn::FindInMap", 3, path) as [
    JsonValue,
    JsonValue,
    JsonValue,
  ];
  const mapName = evaluateString(mapNode, childPath(path, 0), context, depth);
  const topKey = evaluateString(topNode, childPath(path, 1), context, depth);
  const secondKey = evaluateString(secondNode, childPath(path, 2), context, depth);
  const map = context.mappings.get(mapName);
  if (map === undefined) throw new TemplateError(childPath(path, 0), `unknown mapping "${mapName}"`);
  const top = map.get(topKey);
  if (top === undefined)
    throw new TemplateError(childPath(path, 1), `mapping "${mapName}" has no key "${topKey}"`);
  const value = top.get(secondKey);
  if (value === undefined) {
    throw new TemplateError(childPath(path, 2), `mapping "${mapName}.${topKey}" has no key "${secondKey}"`);
  }
  return typeof value === "string" ? value : [...value];
}

/**
 * `Fn::Sub`, as a string or as `[string, {variables}]`. `${Name}` is replaced by the variable or
 * parameter `Name`; `${!Literal}` is written as `${Literal}` (CloudFormation's escape); an
 * unmatched `${` is kept. A name that is neither a variable nor a parameter is an error, unless
 * it looks like an AWS IoT policy variable (`${iot:Connection.Thing.ThingName}`): that is kept as
 * written, so a policy document built with Fn::Sub keeps its policy variables.
 */
function sub(args: JsonValue, path: string, context: EvaluationContext, depth: number): string {
  let source: JsonValue;
  const variables = new Map<string, string>();
  let sourcePath = path;
  if (Array.isArray(args)) {
    const [sourceNode, variablesNode] = argumentList(args, "Fn::Sub", 2, path) as [JsonValue, JsonValue];
    source = sourceNode;
    sourcePath = childPath(path, 0);
    const variablesPath = childPath(path, 1);
    if (!isObject(variablesNode)) {
      throw new TemplateError(
        variablesPath,
        `Fn::Sub variables must be an object, got ${typeName(variablesNode)}`,
      );
    }
    for (const [name, node] of Object.entries(variablesNode)) {
      variables.set(name, evaluateString(node, childPath(variablesPath, name), context, depth));
    }
  } else {
    source = args;
  }
  if (typeof source !== "string") {
    throw new TemplateError(sourcePath, `Fn::Sub takes a string, got ${typeName(source)} ${preview(source)}`);
  }
  return substitute(source, sourcePath, (name) => {
    const variable = variables.get(name);
    if (variable !== undefined) return variable;
    const parameter = context.parameters.get(name);
    if (typeof parameter === "string") return parameter;
    if (parameter !== undefined) {
      throw new TemplateError(sourcePath, `\${${name}} is a list parameter; Fn::Sub needs a string`);
    }
    if (POLICY_VARIABLE.test(name)) return `\${${name}}`;
    throw new TemplateError(sourcePath, `Fn::Sub references unknown variable "\${${name}}"`);
  });
}

function substitute(source: string, path: string, resolve: (name: string) => string): string {
  let out = "";
  let cursor = 0;
  while (cursor < source.length) {
    const start = source.indexOf("${", cursor);
    const end = start === -1 ? -1 : source.indexOf("}", start + 2);
    if (start === -1 || end === -1) break;
    out += source.slice(cursor, start);
    const name = source.slice(start + 2, end);
    if (name.startsWith("!")) out += `\${${name.slice(1)}}`;
    else if (name === "") throw new TemplateError(path, "Fn::Sub contains an empty variable reference");
    else out += resolve(name);
    cursor = end + 1;
  }
  return out + source.slice(cursor);
}

/** Reads and checks the `Mappings` section: no intrinsics, values are strings or string lists. */
export function readMappings(section: JsonValue | undefined): Mappings {
  const mappings = new Map<string, Map<string, Map<string, ParameterValue>>>();
  if (section === undefined) return mappings;
  const path = "Mappings";
  if (!isObject(section)) throw new TemplateError(path, `must be an object, got ${typeName(section)}`);
  for (const [mapName, map] of Object.entries(section)) {
    const mapPath = childPath(path, mapName);
    if (!isObject(map)) throw new TemplateError(mapPath, `a mapping must be an object, got ${typeName(map)}`);
    const tops = new Map<string, Map<string, ParameterValue>>();
    for (const [topKey, top] of Object.entries(map)) {
      const topPath = childPath(mapPath, topKey);
      if (!isObject(top)) throw new TemplateError(topPath, `must be an object, got ${typeName(top)}`);
      const seconds = new Map<string, ParameterValue>();
      for (const [secondKey, value] of Object.entries(top)) {
        seconds.set(secondKey, mappingValue(value, childPath(topPath, secondKey)));
      }
      tops.set(topKey, seconds);
    }
    mappings.set(mapName, tops);
  }
  return mappings;
}

function mappingValue(value: JsonValue, path: string): ParameterValue {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (Array.isArray(value) && value.every((item) => typeof item === "string")) return value as string[];
  if (isObject(value) && Object.keys(value).some(isIntrinsicKey)) {
    throw new TemplateError(path, "intrinsic functions are not allowed in Mappings");
  }
  throw new TemplateError(
    path,
    `a mapping value must be a string or a list of strings, got ${typeName(value)}`,
  );
}
