import { CredentialError } from "./errors.ts";
import { checkText } from "./field-checks.ts";

/** An MQTT username `{first}&{second}` (device name or key, then product key). */
export interface ParsedUsername {
  /** The part before `&`: Alibaba deviceName or EnOS deviceKey. */
  first: string;
  /** The part after `&`: the productKey. */
  second: string;
  /** The query AWS IoT or an SDK appended after `?` (e.g. `x-amz-customauthorizer-name=...`), if any. */
  query: string | undefined;
}

/**
 * Parses `{name}&{productKey}`, first stripping a `?...` suffix such as the
 * `?x-amz-customauthorizer-name=...&...` that AWS IoT clients append for custom authorizers.
 * Throws `CredentialError` (`MALFORMED_USERNAME`/`EMPTY_VALUE`, field `username`) otherwise.
 */
export function parseUsername(username: unknown): ParsedUsername {
  const text = checkText(username, "username", { code: "MALFORMED_USERNAME" });
  const q = text.indexOf("?");
  const bare = q === -1 ? text : text.slice(0, q);
  const query = q === -1 ? undefined : text.slice(q + 1);
  const parts = bare.split("&");
  if (parts.length !== 2) {
    throw new CredentialError("MALFORMED_USERNAME", "username", "username must be {name}&{productKey}");
  }
  const [first = "", second = ""] = parts;
  if (first.length === 0 || second.length === 0) {
    throw new CredentialError("EMPTY_VALUE", "username", "username has an empty name or productKey");
  }
  return { first, second, query };
}

/** Writes `{first}&{second}`; throws `INVALID_INPUT` naming the argument if a part holds `&` or `?`. */
export function formatUsername(
  first: string,
  second: string,
  firstField: string,
  secondField: string,
): string {
  checkText(first, firstField, { forbidden: "&?|," });
  checkText(second, secondField, { forbidden: "&?|," });
  return `${first}&${second}`;
}
