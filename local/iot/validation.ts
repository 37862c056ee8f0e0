import type { IncomingHttpHeaders } from "node:http";
import * as z from "zod";
import { invalidRequest } from "./errors.ts";

/** Thing names: `[a-zA-Z0-9:_-]+`, 1-128 characters. */
export const thingNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-zA-Z0-9:_-]+$/, "letters, digits, ':', '_' or '-'");

/** Policy names: `[\w+=,.@-]+`, 1-128 characters. */
export const policyNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\w+=,.@-]+$/, "letters, digits and +=,.@_-");

/** Certificate ids: 64 hex characters. */
export const certificateIdSchema = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, "64 hexadecimal characters")
  .transform((id) => id.toLowerCase());

/** Provisioning template names: `[0-9A-Za-z_-]+`, 1-36 characters. */
export const templateNameSchema = z
  .string()
  .min(1)
  .max(36)
  .regex(/^[0-9A-Za-z_-]+$/, "letters, digits, '_' or '-'");

/** Thing attributes: names `[a-zA-Z0-9_.,@/:#-]+` up to 128, values up to 800 characters, at most 50. */
export const attributesSchema = z
  .record(
    z
      .string()
      .max(128)
      .regex(/^[a-zA-Z0-9_.,@/:#-]+$/, "attribute names use letters, digits and _.,@/:#-"),
    z.string().max(800),
  )
  .refine((attributes) => Object.keys(attributes).length <= 50, "at most 50 attributes");

/** Parses a value with a schema; InvalidRequestException with zod's explanation otherwise. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, what = "request"): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success)
    throw invalidRequest(`Invalid ${what}: ${z.prettifyError(result.error).replace(/\n/g, " ")}`);
  return result.data;
}

/** A boolean query parameter (`true`/`false`), or undefined when absent. */
export function queryBoolean(query: URLSearchParams, name: string): boolean | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (value === "true") return true;
  if (value === "false") return false;
  throw invalidRequest(`Query parameter ${name} must be true or false.`);
}

/** An integer query parameter within bounds, or undefined when absent. */
export function queryInteger(
  query: URLSearchParams,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < min || number > max) {
    throw invalidRequest(`Query parameter ${name} must be an integer from ${min} to ${max}.`);
  }
  return number;
}

/** One of a set of values from the query, or undefined when absent. */
export function queryEnum<T extends string>(
  query: URLSearchParams,
  name: string,
  values: readonly T[],
): T | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (!(values as readonly string[]).includes(value)) {
    throw invalidRequest(`Query parameter ${name} must be one of ${values.join(", ")}.`);
  }
  return value as T;
}

/** A header value (first one), required. */
export function requiredHeader(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name.toLowerCase()];
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) throw invalidRequest(`Missing header ${name}.`);
  return text;
}

/** A sort key that orders records by creation time (then by id): the order "creation order" listings use. */
export const creationKey = (creationMs: number, id: string) =>
  `${Math.max(0, Math.trunc(creationMs)).toString().padStart(16, "0")}|${id}`;

/**
 * One page of a listing. `items` are sorted here by `keyOf` (descending when asked) and the token
 * names the last key served: base64 of `{"after": key}`, opaque to clients (AWS IoT's markers and
 * tokens match `[A-Za-z0-9+/]+={0,2}`, e.g. https://docs.aws.amazon.com/iot/latest/apireference/API_ListPolicies.html).
 * The next page starts after that key, so items deleted or added while a client pages neither
 * make it skip nor repeat the others (an offset would), and the token survives a restart.
 */
export function paginate<T>(
  items: readonly T[],
  token: string | null | undefined,
  pageSize: number,
  keyOf: (item: T) => string,
  options: { descending?: boolean } = {},
): { page: T[]; nextToken?: string } {
  const direction = options.descending ? -1 : 1;
  const keyed = items.map((item) => ({ item, key: keyOf(item) }));
  keyed.sort((a, b) => direction * (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  let start = 0;
  if (token) {
    const after = decodeToken(token);
    start = keyed.findIndex(({ key }) => (direction === 1 ? key > after : key < after));
    if (start === -1) start = keyed.length;
  }
  const slice = keyed.slice(start, start + pageSize);
  const last = slice.at(-1);
  const more = start + pageSize < keyed.length;
  return {
    page: slice.map(({ item }) => item),
    ...(more && last
      ? { nextToken: Buffer.from(JSON.stringify({ after: last.key })).toString("base64") }
      : {}),
  };
}

function decodeToken(token: string): string {
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(token)) {
    try {
      const parsed: unknown = JSON.parse(Buffer.from(token, "base64").toString("utf8"));
      if (typeof parsed === "object" && parsed !== null && "after" in parsed) {
        const after = (parsed as { after: unknown }).after;
        if (typeof after === "string") return after;
      }
    } catch {
      // falls through
    }
  }
  throw invalidRequest("Invalid pagination token.");
}
