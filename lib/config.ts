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
 * | `apiRateLimit`         | `100`         | stage throttling, requests per second: a flood guard above the provisioning budget, whose jittered 429s are the ones devices should meet |
 * | `apiBurstLimit`        | `200`         | stage throttling, burst                                  |
 * | `domainName`           | -             | custom domain of the vending API (needs `certificateArn`) |
 * | `certificateArn`       | -             | ACM certificate of `domainName`, in the stack's region   |
 * | `waf`                  | `true`        | `false`: no WAF web ACL on the vending API (stage throttling only) |
 * | `wafRateLimit`         | `300`         | requests per source IP per 5 minutes before the stack's web ACL blocks that IP (min 10) |
 * | `wafWebAclArn`         | -             | associate this existing regional WAFv2 web ACL instead of creating one |
 * | `thingNamePrefix`      | `""`          | scope the thing grants to `thing/{prefix}*`; thing names must already start with it |
 * | `iotQuotas`            | `aws-default` | the account's AWS IoT TPS per operation: `aws-default`, or raised numbers as JSON (`{"RegisterThing":100,…}`); sizes the provisioning budget |
 * | `apiExecutionLogLevel` | `OFF`         | `ERROR` or `INFO`: API Gateway execution logs (needs the account's API Gateway CloudWatch role) |
 * | `apiCloudWatchRole`    | `false`       | `true`: create that account-level role with this stack   |
 * | `authorizerReservedConcurrency` | `100` | reserved concurrency of the custom authorizer Lambda (whole number ≥ 1; default from lib/lambda-settings.ts, none with `reservedConcurrency=false`) |
 * | `alarmEmail`           | -             | email address the CloudWatch alarms notify (an SNS topic); unset: alarms without notification |
 * | `coapGateway`          | `false`       | `true`: the CoAP-over-DTLS gateway (ECS Fargate behind a UDP NLB; costs money while deployed) |
 * | `coapGatewayVpcId`     | -             | put the gateway in this existing VPC (needs `account`/`region`; public subnets) instead of a new one |
 * | `phoneUserPoolId`      | -             | the phone API's users: this existing Cognito user pool instead of one the stack creates |
 * | `phoneApiRateLimit`    | `20`          | phone API stage throttling, requests per second          |
 * | `phoneApiBurstLimit`   | `40`          | phone API stage throttling, burst                        |
 */

import { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Node } from "constructs";
import { type IotQuotas, parseQuotaProfile } from "#core/admission/quota-profile.ts";

/** The phone API: stage throttling and, optionally, an existing Cognito user pool. */
export type PhoneApiConfig = {
  rateLimit: number;
  burstLimit: number;
  existingUserPoolId?: string;
};

/** Everything the stacks need to know about one deployment. */
export type OnrampConfig = {
  prefix: string;
  env: { account?: string; region?: string };
  destroyOnRemoval: boolean;
  tableEncryption: "aws-managed" | "customer-managed";
  logRetention: RetentionDays;
  api: VendingApiConfig;
  /**
   * The IAM grants on things name `thing/{thingNamePrefix}*`; `""` keeps `thing/*`. The stack does
   * not rename things: the provisioning templates name the thing after the serial number, which is
   * also the device's MQTT client id (templates/policies/device-policy.json), so the prefix must be
   * one every thing name of this deployment already starts with (for example serial numbers
   * `ACME-…` with the prefix `ACME-`).
   */
  thingNamePrefix: string;
  /**
   * The account's AWS IoT control-plane quotas (`iotQuotas`: `aws-default`, or a JSON object of
   * raised TPS by operation); the provisioning budget (admission control) is sized from them
   * (lambdas/core/admission/quota-profile.ts).
   */
  iotQuotas: IotQuotas;
  /**
   * Reserved concurrency of the AWS IoT custom authorizer Lambda (`authorizerReservedConcurrency`);
   * absent: lib/lambda-settings.ts's default (100, or none with `reservedConcurrency=false`). Reserving caps the authorizer (a connect storm cannot
   * take the account's whole concurrency) and guarantees it that much; either way a throttled
   * invocation is a refused CONNECT that the device retries.
   */
  authorizerReservedConcurrency?: number;
  /** Where the CloudWatch alarms send email (`alarmEmail`, through an SNS topic); absent: no topic. */
  alarmEmail?: string;
  /**
   * The CoAP gateway (`coapGateway=true`; lib/constructs/coap-gateway.ts), off by default: Fargate
   * tasks and a Network Load Balancer are billed by the hour. `vpcId`: an existing VPC.
   */
  coapGateway?: { vpcId?: string };
  /** The phone API of device-user binding (lib/constructs/phone-api.ts). */
  phone: PhoneApiConfig;
};

/**
 * The vending API's web ACL: one created by the stack (default), an existing one by ARN, or none.
 */
export type WafConfig =
  | {
      mode: "create";
      /** Requests per source IP per {@link WAF_EVALUATION_WINDOW_SECONDS} before that IP is blocked. */
      rateLimit: number;
    }
  | { mode: "existing"; webAclArn: string }
  | { mode: "off" };

/**
 * The rate rule's evaluation window: AWS WAF's default of 5 minutes (valid: 60, 120, 300, 600 s;
 * https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html).
 */
export const WAF_EVALUATION_WINDOW_SECONDS = 300;

/**
 * Default per-IP limit: 300 requests per 5 minutes, 1 request/s on average. A device vends once
 * (a few retries at most); a factory line behind one NAT address provisioning one device a second
 * stays below it. One address can then use at most a tenth of the default stage throttle (10 rps),
 * so a single flooding source can no longer starve every other device.
 */
export const DEFAULT_WAF_RATE_LIMIT = 300;

/** AWS WAF's lowest allowed rate limit (same page as {@link WAF_EVALUATION_WINDOW_SECONDS}). */
export const MIN_WAF_RATE_LIMIT = 10;

/** The vending API's settings. */
export type VendingApiConfig = {
  rateLimit: number;
  burstLimit: number;
  customDomain?: { domainName: string; certificateArn: string };
  waf: WafConfig;
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
  const waf = wafConfig(read("waf"), read("wafRateLimit"), read("wafWebAclArn"));
  // The CLI always sets CDK_DEFAULT_REGION (us-east-1 when nothing is configured) but sets
  // CDK_DEFAULT_ACCOUNT only with credentials: use them only as a pair, so an offline synth stays
  // environment-agnostic instead of pinning the CLI's fallback region.
  const cliEnv = environment.CDK_DEFAULT_ACCOUNT && environment.CDK_DEFAULT_REGION;
  const authorizerConcurrency = read("authorizerReservedConcurrency");
  const alarmEmail = read("alarmEmail");
  const phoneUserPoolId = read("phoneUserPoolId");
  const coapGatewayVpcId = read("coapGatewayVpcId");
  const coapGateway = bool("coapGateway", read("coapGateway") ?? "false");
  if (coapGatewayVpcId !== undefined) {
    if (!coapGateway) throw new Error("Context coapGatewayVpcId needs coapGateway=true.");
    pattern("coapGatewayVpcId", coapGatewayVpcId, /^vpc-[0-9a-f]{8,17}$/);
  }
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
    // AWS IoT thing names: [a-zA-Z0-9:_-]+, at most 128 characters (CreateThing).
    thingNamePrefix: pattern("thingNamePrefix", read("thingNamePrefix") ?? "", /^[a-zA-Z0-9:_-]{0,100}$/),
    iotQuotas: quotaProfile(read("iotQuotas") ?? "aws-default"),
    ...(alarmEmail === undefined
      ? {}
      : {
          alarmEmail: pattern("alarmEmail", alarmEmail, /^[^\s@,;]{1,64}@[^\s@,;]{1,253}\.[^\s@,;]{2,63}$/),
        }),
    ...(coapGateway ? { coapGateway: coapGatewayVpcId ? { vpcId: coapGatewayVpcId } : {} } : {}),
    ...(authorizerConcurrency === undefined
      ? {}
      : {
          authorizerReservedConcurrency: wholeNumber("authorizerReservedConcurrency", authorizerConcurrency),
        }),
    phone: {
      rateLimit: positive("phoneApiRateLimit", read("phoneApiRateLimit") ?? "20"),
      burstLimit: positive("phoneApiBurstLimit", read("phoneApiBurstLimit") ?? "40"),
      ...(phoneUserPoolId === undefined
        ? {}
        : { existingUserPoolId: pattern("phoneUserPoolId", phoneUserPoolId, /^[\w-]+_[0-9a-zA-Z]+$/) }),
    },
    api: {
      // Above the provisioning budget (10/s at AWS's defaults): the stage's 429 carries a fixed
      // Retry-After, so it must not be what a roll-out meets; admission control answers over-budget
      // vends in a few milliseconds with a Retry-After from the backlog (ARCHITECTURE.md).
      rateLimit: positive("apiRateLimit", read("apiRateLimit") ?? "100"),
      burstLimit: positive("apiBurstLimit", read("apiBurstLimit") ?? "200"),
      ...(domainName && certificateArn ? { customDomain: { domainName, certificateArn } } : {}),
      waf,
      executionLogLevel: oneOf("apiExecutionLogLevel", read("apiExecutionLogLevel") ?? "OFF", [
        "OFF",
        "ERROR",
        "INFO",
      ] as const),
      createCloudWatchRole: bool("apiCloudWatchRole", read("apiCloudWatchRole") ?? "false"),
    },
  };
}

/**
 * `waf` (default `true`), `wafRateLimit` and `wafWebAclArn`: an existing web ACL's ARN wins over
 * creating one; turning WAF off while naming a web ACL is a contradiction, not a choice.
 */
function wafConfig(
  enabled: string | undefined,
  rateLimit: string | undefined,
  webAclArn: string | undefined,
): WafConfig {
  const on = bool("waf", enabled ?? "true");
  if (!on) {
    if (webAclArn) throw new Error("Context waf=false contradicts wafWebAclArn; give one of them.");
    return { mode: "off" };
  }
  if (webAclArn) {
    pattern("wafWebAclArn", webAclArn, /^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional\/webacl\/.+$/);
    return { mode: "existing", webAclArn };
  }
  const limit = positive("wafRateLimit", rateLimit ?? String(DEFAULT_WAF_RATE_LIMIT));
  if (!Number.isInteger(limit) || limit < MIN_WAF_RATE_LIMIT || limit > 2_000_000_000) {
    throw new Error(
      `Context wafRateLimit must be a whole number from ${MIN_WAF_RATE_LIMIT} to 2000000000, not "${rateLimit}".`,
    );
  }
  return { mode: "create", rateLimit: limit };
}

/** `iotQuotas`: `aws-default` or a JSON object of raised TPS; errors name the key. */
function quotaProfile(value: string): IotQuotas {
  try {
    return parseQuotaProfile(value);
  } catch (error) {
    throw new Error(`Context ${error instanceof Error ? error.message : String(error)}`);
  }
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

function wholeNumber(key: string, value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) {
    throw new Error(`Context ${key} must be a whole number of at least 1, not "${value}".`);
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
