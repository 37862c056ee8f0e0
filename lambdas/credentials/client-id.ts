import { CredentialError } from "./errors.ts";
import { checkText } from "./field-checks.ts";

/** An MQTT clientId split into the caller's id and the `|k=v,k=v|` parameter block. */
export interface ParsedClientId {
  /** The part before the first `|` (the client id the device chose). */
  id: string;
  /** The parameters in the block, by name; empty when there is no block. Null prototype. */
  params: Readonly<Record<string, string>>;
  /** Whether the clientId carried a `|...|` block at all. */
  hasBlock: boolean;
}

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const DELIMITERS = "|,=";

/**
 * Parses `{id}|k=v,k=v|`. A clientId without `|` parses to its id and no parameters. Throws
 * `CredentialError` (`MALFORMED_CLIENT_ID`, `EMPTY_VALUE`, `DUPLICATE_PARAMETER`; field `clientId`
 * or the parameter's name) for anything else; never another error type.
 */
export function parseClientId(clientId: unknown): ParsedClientId {
  const text = checkText(clientId, "clientId", { code: "MALFORMED_CLIENT_ID" });
  const open = text.indexOf("|");
  if (open === -1) return { id: text, params: Object.create(null), hasBlock: false };
  const id = text.slice(0, open);
  if (id.length === 0) throw new CredentialError("EMPTY_VALUE", "clientId", "clientId has an empty id");
  if (!text.endsWith("|") || text.length === open + 1 || text.indexOf("|", open + 1) !== text.length - 1) {
    throw new CredentialError(
      "MALFORMED_CLIENT_ID",
      "clientId",
      "clientId must be {id} or {id}|k=v,k=v| with exactly two '|'",
    );
  }
  const block = text.slice(open + 1, -1);
  const params: Record<string, string> = Object.create(null);
  if (block.length > 0) {
    for (const entry of block.split(",")) {
      const eq = entry.indexOf("=");
      const name = eq === -1 ? entry : entry.slice(0, eq);
      const value = eq === -1 ? "" : entry.slice(eq + 1);
      if (eq === -1 || !PARAM_NAME.test(name) || value.length === 0 || value.includes("=")) {
        throw new CredentialError(
          "MALFORMED_CLIENT_ID",
          "clientId",
          "clientId parameters must be name=value pairs separated by ','",
        );
      }
      if (Object.hasOwn(params, name)) {
        throw new CredentialError("DUPLICATE_PARAMETER", name, `clientId parameter ${name} appears twice`);
      }
      params[name] = value;
    }
  }
  return { id, params, hasBlock: true };
}

/**
 * Writes `{id}|k=v,k=v|` with the parameters in the given order (values left `undefined` are
 * skipped). Throws `INVALID_INPUT` naming the offending argument when an id or value contains a
 * delimiter (`|`, `,`, `=`) or is empty.
 */
export function formatClientId(
  id: string,
  params: ReadonlyArray<readonly [string, string | undefined]>,
  idField = "clientId",
): string {
  checkText(id, idField, { forbidden: "|" });
  const entries: string[] = [];
  for (const [name, value] of params) {
    if (value === undefined) continue;
    if (!PARAM_NAME.test(name)) {
      throw new CredentialError("INVALID_INPUT", "clientId", "clientId parameter names must be identifiers");
    }
    checkText(value, name, { forbidden: DELIMITERS });
    entries.push(`${name}=${value}`);
  }
  const clientId = `${id}|${entries.join(",")}|`;
  checkText(clientId, idField); // total length
  return clientId;
}
