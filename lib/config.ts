/**
 * Deployment settings, read once from CDK context (`-c key=value` or cdk.json "context") with
 * defaults here. Values from the command line arrive as strings, so every reader parses.
 *
 * | context key            | default       | meaning                                                  |
 * |------------------------|---------------|----------------------------------------------------------|
 * | `prefix`               | `IotOnramp`   | stack names `{prefix}-Registry` / `{prefix}-Provisioning`, export names `{prefix}-…` |
 * | `account`, `region`    | CDK_DEFAULT_* | target environment (CDK_DEFAULT_ACCOUNT and _REGION only as a pair); none = environment-agnostic |
 * | `destroyOnRemoval`     | `false`       | dev only: table, secret and logs are deleted with the stack |
 * | `tableEncryption`      | `aws-managed` | `aws-managed` or `customer-managed` (a KMS key with rotation) |
 * | `logRetentionDays`     | `365`         | retention of the Lambda and API access log groups        |
 * | `apiRateLimit`         | `10`          | stage throttling, requests per second (RegisterThing allows about 10 TPS) |
 * | `apiBurstLimit`        | `20`          | stage throttling, burst                                  |
 * | `domainName`           | -             | custom domain of the vending API (needs `certificateArn`) |
 * | `certificateArn`       | -             | ACM certificate of `domainName`, in the stack's region   |
 * | `wafWebAclArn`         | -             | an existing regional WAFv2 web ACL to associate with the stage |
 * | `apiExecutionLogLevel` | `OFF`         | `ERROR` or `INFO`: API Gateway execution logs (needs the account's API Gateway CloudWatch role) |
 * | `apiCloudWatchRole`    | `false`       | `true`: create that account-level role with this stack   |
 */

import { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Node } from "constructs";

/** Everything the stacks need to know about one deployment. */
export type OnrampConfig = {
  prefix: string;
  env: { account?: string; region?: string };
  destroyOnRemoval: boolean;
  tableEncryption: "aws-managed" | "customer-managed";
  logRetention: RetentionDays;
  api: VendingApiConfig;
};

/** The vending API's settings. */
export type VendingApiConfig = {
  rateLimit: number;
  burstLimit: number;
  customDomain?: { domainName: string; certificateArn: string };
  wafWebAclArn?: string;
  executionLogLevel: "OFF" | "ERROR" | "INFO";
  createCloudWatchRole: boolean;
};

/** Reads and validates the context; throws with the key's name on a bad value (fail fast). */
export function readOnrampConfig(node: Node, environment: NodeJS.ProcessEnv = process.env): OnrampConfig {
  const read = (key: string): string | undefined => {
    const value: unknown = node.tryGetContext(key);
    if (value === undefined || value === null || value === "") return undefined;
    return String(value);
  };
  const domainName = read("domainName");
  const certificateArn = read("certificateArn");
  if ((domainName === undefined) !== (certificateArn === undefined)) {
    throw new Error("Context domainName and certificateArn must be given together.");
  }
  const wafWebAclArn = read("wafWebAclArn");
  // The CLI always sets CDK_DEFAULT_REGION (us-east-1 when nothing is configured) but sets
  // CDK_DEFAULT_ACCOUNT only with credentials: use them only as a pair, so an offline synth stays
  // environment-agnostic instead of pinning the CLI's fallback region.
  const cliEnv = environment.CDK_DEFAULT_ACCOUNT && environment.CDK_DEFAULT_REGION;
  const account = read("account") ?? (cliEnv ? environment.CDK_DEFAULT_ACCOUNT : undefined);
  const region = read("region") ?? (cliEnv ? environment.CDK_DEFAULT_REGION : undefined);
  return {
    prefix: pattern("prefix", read("prefix") ?? "IotOnramp", /^[A-Za-z][A-Za-z0-9-]{0,40}$/),
    env: { ...(account ? { account } : {}), ...(region ? { region } : {}) },
    destroyOnRemoval: bool("destroyOnRemoval", read("destroyOnRemoval") ?? "false"),
    tableEncryption: oneOf("tableEncryption", read("tableEncryption") ?? "aws-managed", [
      "aws-managed",
      "customer-managed",
    ] as const),
    logRetention: retention(read("logRetentionDays") ?? "365"),
    api: {
      rateLimit: positive("apiRateLimit", read("apiRateLimit") ?? "10"),
      burstLimit: positive("apiBurstLimit", read("apiBurstLimit") ?? "20"),
      ...(domainName && certificateArn ? { customDomain: { domainName, certificateArn } } : {}),
      ...(wafWebAclArn ? { wafWebAclArn } : {}),
      executionLogLevel: oneOf("apiExecutionLogLevel", read("apiExecutionLogLevel") ?? "OFF", [
        "OFF",
        "ERROR",
        "INFO",
      ] as const),
      createCloudWatchRole: bool("apiCloudWatchRole", read("apiCloudWatchRole") ?? "false"),
    },
  };
}

function bool(key: string, value: string): boolean {
  if (value === "true") return true;
  if (value === "false") return false;
  throw new Error(`Context ${key} must be true or false, not "${value}".`);
}

function positive(key: string, value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) {
    throw new Error(`Context ${key} must be a positive number, not "${value}".`);
  }
  return number;
}

function oneOf<const T extends readonly string[]>(key: string, value: string, allowed: T): T[number] {
  if (!allowed.includes(value)) throw new Error(`Context ${key} must be one of ${allowed.join(", ")}.`);
  return value as T[number];
}

function pattern(key: string, value: string, re: RegExp): string {
  if (!re.test(value)) throw new Error(`Context ${key} must match ${re}, not "${value}".`);
  return value;
}

function retention(value: string): RetentionDays {
  const days = Number(value);
  const known = Object.values(RetentionDays).filter((v): v is RetentionDays => typeof v === "number");
  if (!known.includes(days as RetentionDays)) {
    throw new Error(`Context logRetentionDays must be one of ${known.join(", ")}, not "${value}".`);
  }
  return days as RetentionDays;
}
