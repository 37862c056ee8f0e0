/**
 * Writing X.501 names (and reading parsed @peculiar/x509 ones) for issuance, CA and CSR creation.
 * The Lambda path reads names from DER with distinguished-name-reader.ts instead, which does not
 * load @peculiar/x509.
 */
import { ValidationError } from "../errors.ts";
import type { DistinguishedName } from "./distinguished-name-reader.ts";
import { x509 } from "./x509.ts";

export type { DistinguishedName } from "./distinguished-name-reader.ts";

/** The fields of a name to create. */
export type SubjectFields = Omit<DistinguishedName, "text">;

/** A name to create: fields, or a string such as `CN=dev-1, O=Acme, C=US`. */
export type SubjectInput = string | SubjectFields;

type Field = keyof SubjectFields;
type Encoding = "printable" | "ia5" | "auto";

/** In the order they are written into a new name (most general first, as openssl prints them). */
const ATTRIBUTES: ReadonlyArray<{ field: Field; oid: string; encoding: Encoding }> = [
  { field: "country", oid: "2.5.4.6", encoding: "printable" },
  { field: "stateName", oid: "2.5.4.8", encoding: "auto" },
  { field: "locality", oid: "2.5.4.7", encoding: "auto" },
  { field: "organization", oid: "2.5.4.10", encoding: "auto" },
  { field: "organizationalUnit", oid: "2.5.4.11", encoding: "auto" },
  { field: "commonName", oid: "2.5.4.3", encoding: "auto" },
  { field: "serialNumber", oid: "2.5.4.5", encoding: "printable" },
  { field: "distinguishedNameQualifier", oid: "2.5.4.46", encoding: "printable" },
  { field: "emailAddress", oid: "1.2.840.113549.1.9.1", encoding: "ia5" },
];

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/**
 * Reads the known fields of a parsed X.509 name. readDistinguishedName (distinguished-name-reader.ts)
 * gives the same result from the name's DER without @peculiar/x509.
 */
export function readName(name: x509.Name): DistinguishedName {
  const result: DistinguishedName = { text: name.toString() };
  for (const { field, oid } of ATTRIBUTES) {
    const value = name.getField(oid)[0];
    if (value !== undefined) result[field] = value;
  }
  return result;
}

/** Builds an X.509 name; throws ValidationError for an empty name or a value it cannot encode. */
export function toX509Name(subject: SubjectInput): x509.Name {
  if (typeof subject === "string") {
    try {
      const name = new x509.Name(subject);
      if (name.toJSON().length === 0) throw new Error("empty");
      return name;
    } catch (error) {
      throw new ValidationError(`Cannot read the subject name "${subject.slice(0, 200)}".`, { cause: error });
    }
  }
  const json: x509.JsonNameParams = [];
  for (const { field, oid, encoding } of ATTRIBUTES) {
    const value = subject[field];
    if (value === undefined) continue;
    if (value.length === 0 || value.length > 256) {
      throw new ValidationError(`The subject ${field} must have 1-256 characters.`);
    }
    if (field === "country" && !/^[A-Z]{2}$/.test(value)) {
      throw new ValidationError("The subject country must be two capital letters (ISO 3166).");
    }
    json.push({ [oid]: [encode(field, value, encoding)] });
  }
  if (json.length === 0) throw new ValidationError("The subject name needs at least one field.");
  return new x509.Name(json);
}

function encode(field: Field, value: string, encoding: Encoding): x509.JsonAttributeObject {
  const printable = PRINTABLE.test(value);
  if (encoding === "ia5") {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: IA5 is 7-bit ASCII
    if (!/^[\x00-\x7f]*$/.test(value)) throw new ValidationError(`The subject ${field} must be ASCII.`);
    return { ia5String: value };
  }
  if (encoding === "printable" && !printable) {
    throw new ValidationError(`The subject ${field} may only hold letters, digits, spaces and '()+,-./:=?.`);
  }
  return printable ? { printableString: value } : { utf8String: value };
}
