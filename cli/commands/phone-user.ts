import { CliError } from "../cli-error.ts";

/** A fresh ID token for a local user, issued the way `onramp users token` does. */
export async function localIdToken(_endpointsFile: string, name: string): Promise<string> {
  throw new CliError(
    `--user ${name}: this local stack issues no user tokens yet; pass --id-token`,
    1,
    "NO_JWT_ISSUER",
  );
}
