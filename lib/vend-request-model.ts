/**
 * The API Gateway model of `POST /v1/certificates`, derived from the zod schema the Lambda parses
 * with (`vendRequestSchema`), so the gateway and the function cannot disagree on field names,
 * patterns or required fields. Cross-field rules (csr required in csr mode) stay in the Lambda.
 */
import { type JsonSchema, JsonSchemaType, JsonSchemaVersion } from "aws-cdk-lib/aws-apigateway";
import * as z from "zod";
import { vendRequestSchema } from "#core/vending/vend-request.ts";

type Draft4 = {
  type?: string;
  properties?: Record<string, Draft4>;
  required?: string[];
  additionalProperties?: boolean | Draft4;
  pattern?: string;
  enum?: unknown[];
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  default?: unknown;
  [key: string]: unknown;
};

const KNOWN_KEYS = new Set([
  "$schema",
  "type",
  "properties",
  "required",
  "additionalProperties",
  "pattern",
  "enum",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "default",
]);

const TYPES: Record<string, JsonSchemaType> = {
  object: JsonSchemaType.OBJECT,
  string: JsonSchemaType.STRING,
  integer: JsonSchemaType.INTEGER,
  number: JsonSchemaType.NUMBER,
  boolean: JsonSchemaType.BOOLEAN,
};

/**
 * The request body model (JSON Schema draft 4, what API Gateway validates with).
 *
 * String length limits (`maxLength`) are left out on purpose: the body size limit (16 KiB -> 413
 * PAYLOAD_TOO_LARGE) is enforced by the Lambda, and an oversized CSR must reach it to get 413
 * rather than the gateway's 400.
 */
export function vendRequestModelSchema(): JsonSchema {
  const draft4 = z.toJSONSchema(vendRequestSchema, { target: "draft-4", io: "input" }) as Draft4;
  return { schema: JsonSchemaVersion.DRAFT4, title: "VendRequest", ...toCdk(draft4) };
}

function toCdk(node: Draft4): JsonSchema {
  const unknown = Object.keys(node).filter((key) => !KNOWN_KEYS.has(key));
  if (unknown.length > 0)
    throw new Error(`vendRequestModelSchema: unsupported keywords ${unknown.join(", ")}`);
  const type = node.type === undefined ? undefined : TYPES[node.type];
  if (node.type !== undefined && type === undefined) throw new Error(`unsupported type ${node.type}`);
  return {
    ...(type ? { type } : {}),
    ...(node.properties
      ? { properties: Object.fromEntries(Object.entries(node.properties).map(([k, v]) => [k, toCdk(v)])) }
      : {}),
    ...(node.required ? { required: node.required } : {}),
    ...(typeof node.additionalProperties === "boolean"
      ? { additionalProperties: node.additionalProperties }
      : {}),
    ...(node.pattern !== undefined ? { pattern: node.pattern } : {}),
    ...(node.enum ? { enum: node.enum } : {}),
    ...(node.minLength !== undefined ? { minLength: node.minLength } : {}),
    ...(node.minimum !== undefined ? { minimum: node.minimum } : {}),
    ...(node.maximum !== undefined ? { maximum: node.maximum } : {}),
    ...(node.exclusiveMinimum !== undefined ? { exclusiveMinimum: node.exclusiveMinimum } : {}),
    ...(node.exclusiveMaximum !== undefined ? { exclusiveMaximum: node.exclusiveMaximum } : {}),
  };
}
