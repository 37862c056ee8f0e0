/**
 * IAM-style string patterns as AWS IoT policies write them: `*` (any characters, `/` included)
 * and `?` (one character) wildcards, and policy variables `${name}` (optionally
 * `${name, 'default'}`) whose resolved values are always literal text, so a client id containing
 * `*` never widens a resource. `${*}`, `${?}` and `${$}` stand for those characters literally.
 */

/** Policy variable values by name, e.g. `iot:ClientId` -> `dev-1`. */
export type PolicyVariables = ReadonlyMap<string, string>;

/** How a pattern is compiled. */
export type PatternOptions = {
  /** Treat `*` and `?` as wildcards (resources, actions, StringLike); literal otherwise. */
  wildcards: boolean;
  /** Resolve `${...}` policy variables (resources and condition values; not actions). */
  variables?: PolicyVariables;
  ignoreCase?: boolean;
};

const LITERAL_ESCAPES: Record<string, string> = { "*": "*", "?": "?", $: "$" };

/**
 * Compiles a policy pattern into an anchored regular expression, or undefined when it names a
 * variable that has no value: AWS IoT then treats the pattern as matching nothing.
 */
export function compilePattern(pattern: string, options: PatternOptions): RegExp | undefined {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === "$" && pattern[i + 1] === "{" && options.variables) {
      const end = pattern.indexOf("}", i + 2);
      if (end < 0) {
        source += escapeRegExp(pattern.slice(i));
        break;
      }
      const value = resolveVariable(pattern.slice(i + 2, end), options.variables);
      if (value === undefined) return undefined;
      source += escapeRegExp(value);
      i = end;
    } else if (options.wildcards && char === "*") {
      source += "[\\s\\S]*";
    } else if (options.wildcards && char === "?") {
      source += "[\\s\\S]";
    } else {
      source += escapeRegExp(char);
    }
  }
  return new RegExp(`^${source}$`, options.ignoreCase ? "iu" : "u");
}

/** True when `value` matches the pattern; false also when the pattern has an unresolved variable. */
export function matchesPattern(pattern: string, value: string, options: PatternOptions): boolean {
  return compilePattern(pattern, options)?.test(value) ?? false;
}

/**
 * Resolves the text between `${` and `}`: a literal escape, a variable, or a variable with a
 * quoted default. Undefined when the variable has no value and no default.
 */
export function resolveVariable(expression: string, variables: PolicyVariables): string | undefined {
  const literal = LITERAL_ESCAPES[expression];
  if (literal !== undefined) return literal;
  const parsed = /^\s*([^,\s]+)\s*(?:,\s*'([^']*)'\s*)?$/.exec(expression);
  if (!parsed) return undefined;
  const name = parsed[1] as string;
  return variables.get(name) ?? parsed[2];
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}
