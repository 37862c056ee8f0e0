/**
 * Test helpers for the phone API on the local stack: users (ID tokens come from the stack's JWT
 * issuer, `stack.binding.issuer`) and one request as a phone app sends it.
 */
import { randomUUID } from "node:crypto";

/** A phone user as the JWT issuer takes it. */
export type PhoneUser = { userId: string; username: string; groups?: string[] };

/** Users with fresh ids, keyed by their names. */
export function phoneUsers<Name extends string>(names: readonly Name[]): Record<Name, PhoneUser> {
  const users = {} as Record<Name, PhoneUser>;
  for (const username of names) users[username] = { userId: randomUUID(), username };
  return users;
}

/** An operator (group onramp-operators): may read any device's owners. */
export function operatorUser(): PhoneUser {
  return { userId: randomUUID(), username: "ops", groups: ["onramp-operators"] };
}

/**
 * Sends one request to the API at `apiUrl`: `Authorization: Bearer` when `auth` is given,
 * `content-type` when given. Resolves the status, headers and body text (whatever it is).
 */
export async function apiRequest(
  apiUrl: string,
  method: string,
  path: string,
  options: {
    auth?: string | undefined;
    body?: string | Buffer | undefined;
    contentType?: string | undefined;
  } = {},
): Promise<{ url: URL; status: number; headers: Headers; text: string }> {
  const url = new URL(path, apiUrl);
  const response = await fetch(url, {
    method,
    headers: {
      ...(options.auth ? { authorization: `Bearer ${options.auth}` } : {}),
      ...(options.contentType ? { "content-type": options.contentType } : {}),
    },
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  return { url, status: response.status, headers: response.headers, text: await response.text() };
}
