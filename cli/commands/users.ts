import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { OPERATOR_GROUP } from "#core/binding/model.ts";
import { JWT_KEY_FILE, LocalJwtIssuer } from "#local/jwt-issuer.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";
import { DEFAULT_ENDPOINTS_FILE } from "../wiring.ts";

/** A local phone-app user (the local stand-in for a Cognito user pool's user). */
export type LocalUser = { userId: string; username: string; groups: string[]; createdAt: string };

const USERNAME = /^[A-Za-z0-9._@+-]{1,128}$/;
const USERS_DIR = "users";

type UsersOptions = { endpoints: string; operator?: boolean; json?: boolean; aws?: boolean };

/** `onramp users create | token`: local phone-app users and their ID tokens (1 h). */
export function registerUsersCommands(program: Command): void {
  const users = program
    .command("users")
    .description("Local phone-app users for the binding API (on AWS: the Cognito user pool)");
  const common = (command: Command) =>
    command
      .option(
        "--endpoints <file>",
        "local stack endpoints file written by `npm start`",
        process.env.ONRAMP_ENDPOINTS ?? DEFAULT_ENDPOINTS_FILE,
      )
      .option("--aws", "not available: on AWS, users sign in to the Cognito user pool")
      .option("--json", "print JSON");

  common(
    users
      .command("create <name>")
      .description("Create a local user and print {userId, username, idToken} (ID token valid 1 h)")
      .option(
        "--operator",
        "member of the onramp-operators group (operator routes such as a device's owners)",
      )
      .addHelpText(
        "after",
        `
Examples:
  onramp users create alice
  onramp users create ops --operator --json`,
      ),
  ).action(async (name: string, options: UsersOptions) => {
    const stack = localStack(options);
    const user = createLocalUser(stack.dataDir, name, options.operator ?? false);
    printResult(await tokenFor(stack, user), options.json);
  });

  common(
    users
      .command("token <name>")
      .description("Print a fresh ID token (1 h) for a local user")
      .addHelpText(
        "after",
        `
Example:
  curl -H "Authorization: Bearer $(onramp users token alice --json | jq -r .idToken)" http://127.0.0.1:3000/v1/devices`,
      ),
  ).action(async (name: string, options: UsersOptions) => {
    const stack = localStack(options);
    printResult(await tokenFor(stack, readLocalUser(stack.dataDir, name)), options.json);
  });
}

/** A fresh ID token for a local user of the stack behind this endpoints file (`onramp phone --user`). */
export async function localIdToken(endpointsFile: string, name: string): Promise<string> {
  const stack = localStack({ endpoints: endpointsFile });
  return (await tokenFor(stack, readLocalUser(stack.dataDir, name))).idToken;
}

type LocalStackRef = { dataDir: string; issuer: string };

/** The local stack's data folder and JWT issuer, from its endpoints file. */
function localStack(options: { endpoints: string; aws?: boolean }): LocalStackRef {
  if (options.aws) {
    throw new CliError(
      "onramp users is for the local stack; on AWS, create users in the Cognito user pool (output PhoneUserPoolId).",
      2,
      "NOT_ON_AWS",
    );
  }
  const file = resolve(options.endpoints);
  let endpoints: { jwtIssuer?: unknown; inMemory?: unknown };
  try {
    endpoints = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    throw new CliError(
      `No local stack endpoints at ${file}: start it with \`npm start\`.`,
      1,
      "NO_LOCAL_STACK",
    );
  }
  if (typeof endpoints.jwtIssuer !== "string") {
    throw new CliError(
      `${file} names no jwtIssuer: restart the local stack with this version.`,
      1,
      "NO_JWT_ISSUER",
    );
  }
  const dataDir = dirname(file);
  if (endpoints.inMemory === true || !existsSync(join(dataDir, JWT_KEY_FILE))) {
    throw new CliError(
      "This local stack keeps its JWT signing key in memory (--in-memory): start it with a data folder to use onramp users.",
      1,
      "NO_JWT_ISSUER",
    );
  }
  return { dataDir, issuer: endpoints.jwtIssuer };
}

async function tokenFor(stack: LocalStackRef, user: LocalUser) {
  const issuer = await LocalJwtIssuer.fromPem(
    stack.issuer,
    readFileSync(join(stack.dataDir, JWT_KEY_FILE), "utf8"),
  );
  const idToken = await issuer.issueIdToken(user);
  return { userId: user.userId, username: user.username, groups: user.groups, idToken };
}

function checkName(name: string): void {
  if (!USERNAME.test(name)) {
    throw new CliError("<name>: 1-128 letters, digits or . _ @ + -", 2, "INVALID_USERNAME");
  }
}

/** Creates the user's file with an exclusive create: two creates of one name, one wins. */
export function createLocalUser(dataDir: string, name: string, operator: boolean): LocalUser {
  checkName(name);
  const dir = join(dataDir, USERS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const user: LocalUser = {
    userId: randomUUID(),
    username: name,
    groups: operator ? [OPERATOR_GROUP] : [],
    createdAt: new Date().toISOString(),
  };
  try {
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(user, null, 2)}\n`, {
      mode: 0o600,
      flag: "wx",
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new CliError(
        `User ${name} exists; \`onramp users token ${name}\` prints a fresh token.`,
        1,
        "USER_EXISTS",
      );
    }
    throw error;
  }
  return user;
}

function readLocalUser(dataDir: string, name: string): LocalUser {
  checkName(name);
  try {
    return JSON.parse(readFileSync(join(dataDir, USERS_DIR, `${name}.json`), "utf8")) as LocalUser;
  } catch {
    throw new CliError(`No local user ${name}: \`onramp users create ${name}\` first.`, 1, "NO_SUCH_USER");
  }
}
