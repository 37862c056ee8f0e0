import { compilePattern, type PolicyVariables } from "./policy-patterns.ts";

/** A statement's `Condition`: operator -> condition key -> value(s). */
export type PolicyConditionBlock = Record<string, unknown>;

type Operator = (actual: string | undefined, expected: string[], variables: PolicyVariables) => boolean;

const equalsAny = (actual: string, expected: string[], variables: PolicyVariables, ignoreCase: boolean) =>
  expected.some(
    (value) => compilePattern(value, { wildcards: false, variables, ignoreCase })?.test(actual) === true,
  );
const likeAny = (actual: string, expected: string[], variables: PolicyVariables) =>
  expected.some((value) => compilePattern(value, { wildcards: true, variables })?.test(actual) === true);

/**
 * The operators the local engine knows. As in IAM, a key missing from the request makes a
 * positive operator false and a negated one (`...Not...`) true; `...IfExists` makes both true.
 */
const OPERATORS: Record<string, Operator> = {
  StringEquals: (a, e, v) => a !== undefined && equalsAny(a, e, v, false),
  StringNotEquals: (a, e, v) => a === undefined || !equalsAny(a, e, v, false),
  StringEqualsIgnoreCase: (a, e, v) => a !== undefined && equalsAny(a, e, v, true),
  StringNotEqualsIgnoreCase: (a, e, v) => a === undefined || !equalsAny(a, e, v, true),
  StringLike: (a, e, v) => a !== undefined && likeAny(a, e, v),
  StringNotLike: (a, e, v) => a === undefined || !likeAny(a, e, v),
  Bool: (a, e) => a !== undefined && e.some((value) => value.toLowerCase() === a.toLowerCase()),
  Null: (a, e) => e.some((value) => (value.toLowerCase() === "true") === (a === undefined)),
};

/**
 * True when every operator and every key of a Condition block holds (each key: any of its values).
 * Condition keys are the policy variables of the request (`iot:Connection.Thing.IsAttached`,
 * `iot:ClientId`, ...). An operator the engine does not know fails closed: an Allow statement
 * with it never applies, a Deny statement with it always does.
 */
export function evaluateConditions(
  block: PolicyConditionBlock,
  variables: PolicyVariables,
  effect: "Allow" | "Deny",
): boolean {
  for (const [name, entries] of Object.entries(block)) {
    const ifExists = name.endsWith("IfExists") && name !== "IfExists";
    const operator = OPERATORS[ifExists ? name.slice(0, -"IfExists".length) : name];
    if (!operator || typeof entries !== "object" || entries === null || Array.isArray(entries)) {
      return effect === "Deny";
    }
    for (const [key, raw] of Object.entries(entries)) {
      const expected = (Array.isArray(raw) ? raw : [raw]).map(String);
      const actual = conditionKey(variables, key);
      if (ifExists && actual === undefined) continue;
      if (!operator(actual, expected, variables)) return false;
    }
  }
  return true;
}

/** Condition key names are case-insensitive, as in IAM. */
function conditionKey(variables: PolicyVariables, key: string): string | undefined {
  const exact = variables.get(key);
  if (exact !== undefined) return exact;
  const lower = key.toLowerCase();
  for (const [name, value] of variables) if (name.toLowerCase() === lower) return value;
  return undefined;
}
