import type { ParameterValue } from "./intrinsics.ts";
import { childPath, isObject, type JsonValue, own, preview, typeName } from "./json-value.ts";
import { TemplateError } from "./template-error.ts";
import type { CertificateParameters } from "./types.ts";

/** Parameter types a template may declare. */
export const PARAMETER_TYPES = ["String", "Number", "CommaDelimitedList"] as const;

/** The JITP parameters AWS IoT fills from the device certificate, by CertificateParameters field. */
export const CERTIFICATE_PARAMETERS: Readonly<Record<keyof CertificateParameters, string>> = {
  id: "AWS::IoT::Certificate::Id",
  commonName: "AWS::IoT::Certificate::CommonName",
  country: "AWS::IoT::Certificate::Country",
  organization: "AWS::IoT::Certificate::Organization",
  organizationalUnit: "AWS::IoT::Certificate::OrganizationalUnit",
  distinguishedNameQualifier: "AWS::IoT::Certificate::DistinguishedNameQualifier",
  stateName: "AWS::IoT::Certificate::StateName",
  serialNumber: "AWS::IoT::Certificate::SerialNumber",
};

const DECLARATION_KEYS = new Set(["Type", "Default", "Description"]);
const NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;

/** Declared parameters with their resolved values. */
export type ResolvedParameters = {
  /** Raw string values, as reported in the plan. */
  values: Record<string, string>;
  /** What `Ref` returns: strings, or lists for CommaDelimitedList. */
  refs: Map<string, ParameterValue>;
};

/**
 * Resolves every parameter the `Parameters` section declares. A value comes from the certificate
 * (JITP `AWS::IoT::Certificate::*` parameters), else from `given`, else from the Default; a
 * declared parameter with none of these is an error. Given values for undeclared parameters are
 * ignored, as RegisterThing does.
 */
export function resolveParameters(
  section: JsonValue | undefined,
  given: unknown,
  certificate: unknown,
): ResolvedParameters {
  const givenValues = readGiven(given);
  const fromCertificate = readCertificate(certificate);
  const values: Record<string, string> = {};
  const refs = new Map<string, ParameterValue>();
  if (section === undefined) return { values, refs };
  if (!isObject(section))
    throw new TemplateError("Parameters", `must be an object, got ${typeName(section)}`);

  for (const [name, declaration] of Object.entries(section)) {
    const path = childPath("Parameters", name);
    const { type, defaultValue } = readDeclaration(declaration, path);
    const isCertificateParameter = name.startsWith("AWS::IoT::Certificate::");
    const value = fromCertificate.get(name) ?? givenValues.get(name) ?? defaultValue;
    if (value === undefined) {
      throw new TemplateError(
        path,
        isCertificateParameter && certificate !== undefined
          ? "the certificate has no value for this parameter and it has no Default"
          : "no value given for this parameter and it has no Default",
      );
    }
    if (type === "Number" && !NUMBER.test(value)) {
      throw new TemplateError(path, `value ${preview(value)} is not a Number`);
    }
    Object.defineProperty(values, name, { value, enumerable: true, writable: true, configurable: true });
    refs.set(name, type === "CommaDelimitedList" ? value.split(",") : value);
  }
  return { values, refs };
}

function readDeclaration(declaration: JsonValue, path: string): { type: string; defaultValue?: string } {
  if (!isObject(declaration)) {
    throw new TemplateError(path, `a parameter declaration must be an object, got ${typeName(declaration)}`);
  }
  for (const key of Object.keys(declaration)) {
    if (!DECLARATION_KEYS.has(key)) {
      throw new TemplateError(
        childPath(path, key),
        `unknown parameter attribute; allowed: Type, Default, Description`,
      );
    }
  }
  const type = own(declaration, "Type");
  if (typeof type !== "string" || !(PARAMETER_TYPES as readonly string[]).includes(type)) {
    throw new TemplateError(
      childPath(path, "Type"),
      `Type must be one of ${PARAMETER_TYPES.join(", ")}, got ${preview(type ?? null)}`,
    );
  }
  const defaultValue = own(declaration, "Default");
  if (defaultValue === undefined) return { type };
  if (typeof defaultValue === "string") return { type, defaultValue };
  if (typeof defaultValue === "number" && Number.isFinite(defaultValue)) {
    return { type, defaultValue: String(defaultValue) };
  }
  throw new TemplateError(
    childPath(path, "Default"),
    `a Default must be a string, got ${typeName(defaultValue)}`,
  );
}

function readGiven(given: unknown): Map<string, string> {
  const values = new Map<string, string>();
  if (given === undefined || given === null) return values;
  if (typeof given !== "object" || Array.isArray(given)) {
    throw new TemplateError("parameters", `must be an object of strings, got ${typeName(given)}`);
  }
  for (const [name, value] of Object.entries(given)) {
    if (typeof value !== "string") {
      throw new TemplateError(childPath("parameters", name), `must be a string, got ${typeName(value)}`);
    }
    values.set(name, value);
  }
  return values;
}

function readCertificate(certificate: unknown): Map<string, string> {
  const values = new Map<string, string>();
  if (certificate === undefined) return values;
  if (typeof certificate !== "object" || certificate === null || Array.isArray(certificate)) {
    throw new TemplateError("certificate", `must be an object, got ${typeName(certificate)}`);
  }
  const fields = certificate as Record<string, unknown>;
  for (const [field, parameter] of Object.entries(CERTIFICATE_PARAMETERS)) {
    const value = Object.hasOwn(fields, field) ? fields[field] : undefined;
    if (value === undefined) {
      if (field === "id") throw new TemplateError("certificate.id", "the certificate id is required");
      continue;
    }
    if (typeof value !== "string") {
      throw new TemplateError(childPath("certificate", field), `must be a string, got ${typeName(value)}`);
    }
    values.set(parameter, value);
  }
  return values;
}
