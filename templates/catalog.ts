/**
 * The one source of provisioning templates, IoT policy documents and topic rules for both
 * runtimes: the CDK stack reads them at synth time, the local stack at start-up. The JSON files
 * live next to this module (`provisioning/*.json`, `policies/*.json`, `rules/*.json`) and are read
 * relative to it, so a Lambda bundle that imports this module needs the folders it reads copied
 * next to the bundle (ESM output).
 */
import { readdirSync, readFileSync } from "node:fs";
import { NotFoundError } from "#core/errors.ts";

/** The shared device policy every provisioning template attaches by name. */
export const DEVICE_POLICY_NAME = "onramp-device-policy";
/** The policy document file (`policies/device-policy.json`) behind {@link DEVICE_POLICY_NAME}. */
export const DEVICE_POLICY_DOCUMENT = "device-policy";
/** The IoT policy of fleet-provisioning claim certificates. */
export const FLEET_CLAIM_POLICY_NAME = "onramp-fleet-claim-policy";
/** The policy document file (`policies/fleet-claim-policy.json`) behind {@link FLEET_CLAIM_POLICY_NAME}. */
export const FLEET_CLAIM_POLICY_DOCUMENT = "fleet-claim-policy";

/**
 * Policy documents the custom authorizer returns per connection (not created in AWS IoT): the
 * `${onramp:productKey}`, `${onramp:deviceName}` and `${onramp:clientId}` placeholders are filled
 * in for the device that logged in (lambdas/core/authorizer/connection-policy.ts).
 */
export const AUTHORIZER_POLICY_DOCUMENTS = {
  /** A secret-born device's own topic space (Alibaba / EnOS topics and its thing's shadow). */
  device: "secret-device-policy",
  /** An EnOS SecureMode 3 session: the activation topics only. */
  activation: "secret-activation-policy",
} as const;

/** The name each shipped policy document is created under in AWS IoT (by CDK and the local stack). */
export const POLICY_NAMES: Readonly<Record<string, string>> = {
  [DEVICE_POLICY_DOCUMENT]: DEVICE_POLICY_NAME,
  [FLEET_CLAIM_POLICY_DOCUMENT]: FLEET_CLAIM_POLICY_NAME,
};

/** The provisioning templates this project ships, by flow. */
export const PROVISIONING_TEMPLATES = {
  /**
   * Certificate vending API (SerialNumber, ProductKey, CertificateId); the default: vending does it
   * as direct calls, the policy through the product's thing group (register-device-thing.ts).
   */
  cvm: "cvm-device",
  /** The same through RegisterThing, the device policy attached to the certificate. */
  cvmCertificatePolicy: "cvm-device-certificate-policy",
  /** Just-in-time provisioning, attached to a CA's registration config. */
  jitp: "jitp-device",
  /** Fleet provisioning by claim (SerialNumber, AWS::IoT::Certificate::Id). */
  fleetClaim: "fleet-claim-device",
} as const;

/**
 * Handlers a topic rule can target (`rules/*.json` `target`): the CDK stack maps each to its
 * Lambda function, the local stack to the same handler in-process.
 */
export const RULE_TARGETS = {
  /** The JITR Lambda (`lambdas/handlers/jitr-registration.ts`). */
  jitrRegistration: "jitr-registration",
  /** Fleet provisioning's commit (`lambdas/handlers/fleet-commit.ts`), on connect lifecycle events. */
  fleetCommit: "fleet-commit",
  /** Certificate rotation over MQTT (`lambdas/handlers/certificate-rotation.ts`). */
  certificateRotation: "certificate-rotation",
  /** Device–user binding: token reports and device resets (`lambdas/handlers/binding-report.ts`). */
  bindingReport: "binding-report",
} as const;

/**
 * A topic rule as `rules/*.json` defines it. `sql` is an AWS IoT SQL statement (the local rule
 * engine only runs `SELECT * FROM '<topic filter>'`); `target` names a handler of RULE_TARGETS.
 */
export type TopicRuleDefinition = {
  /** AWS IoT rule name: `^[a-zA-Z0-9_]{1,128}$`. */
  ruleName: string;
  sql: string;
  awsIotSqlVersion: "2015-10-08" | "2016-03-23" | "beta";
  target: string;
  description: string;
};

// Resolved on use, not at import: importing the catalog never touches the file system.
const provisioningDir = () => new URL("./provisioning/", import.meta.url);
const policiesDir = () => new URL("./policies/", import.meta.url);
const rulesDir = () => new URL("./rules/", import.meta.url);
const SQL_VERSIONS: readonly string[] = ["2015-10-08", "2016-03-23", "beta"];

/** Names of the provisioning templates in `templates/provisioning/`, sorted. */
export function listProvisioningTemplates(): string[] {
  return listJson(provisioningDir());
}

/** Names of the policy documents in `templates/policies/`, sorted. */
export function listPolicyDocuments(): string[] {
  return listJson(policiesDir());
}

/**
 * The body of a provisioning template as compact JSON, ready for RegisterThing's `templateBody`,
 * a CA's JITP `registrationConfig.templateBody` or CreateProvisioningTemplate.
 * @throws NotFoundError when there is no template of that name
 */
export function loadProvisioningTemplate(name: string): string {
  return loadJson(provisioningDir(), name, "provisioning template", listProvisioningTemplates());
}

/**
 * A policy document as compact JSON, ready for CreatePolicy's `policyDocument` (CDK: JSON.parse
 * it for `CfnPolicy.policyDocument`). Policy variables such as `${iot:Connection.Thing.ThingName}`
 * are kept as written.
 * @throws NotFoundError when there is no policy document of that name
 */
export function loadPolicyDocument(name: string): string {
  return loadJson(policiesDir(), name, "policy document", listPolicyDocuments());
}

/** Names of the topic rules in `templates/rules/`, sorted. */
export function listTopicRules(): string[] {
  return listJson(rulesDir());
}

/**
 * A topic rule definition, checked for the fields both runtimes need.
 * @throws NotFoundError when there is no rule of that name
 * @throws Error naming the file when a field is missing or malformed
 */
export function loadTopicRule(name: string): TopicRuleDefinition {
  const rule = JSON.parse(loadJson(rulesDir(), name, "topic rule", listTopicRules())) as Record<
    string,
    unknown
  >;
  const bad = (field: string, expected: string) =>
    new Error(`templates/rules/${name}.json: "${field}" must be ${expected}.`);
  const text = (field: string) => {
    const value = rule[field];
    if (typeof value !== "string" || value.trim() === "") throw bad(field, "a non-empty string");
    return value;
  };
  const ruleName = text("ruleName");
  if (!/^[a-zA-Z0-9_]{1,128}$/.test(ruleName)) throw bad("ruleName", "1-128 of [a-zA-Z0-9_]");
  const awsIotSqlVersion = text("awsIotSqlVersion");
  if (!SQL_VERSIONS.includes(awsIotSqlVersion)) throw bad("awsIotSqlVersion", SQL_VERSIONS.join(" | "));
  return {
    ruleName,
    sql: text("sql"),
    awsIotSqlVersion: awsIotSqlVersion as TopicRuleDefinition["awsIotSqlVersion"],
    target: text("target"),
    description: text("description"),
  };
}

/**
 * Every rule of `templates/rules/` whose `target` is `target`, sorted by file name: a handler
 * listening on several topic filters has one file per filter (AWS IoT SQL has one FROM per rule).
 * @throws Error when no rule targets it
 */
export function loadTopicRulesFor(target: string): TopicRuleDefinition[] {
  const rules = listTopicRules()
    .map(loadTopicRule)
    .filter((rule) => rule.target === target);
  if (rules.length === 0) throw new Error(`No rule in templates/rules/ targets "${target}".`);
  return rules;
}

function listJson(dir: URL): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .map((file) => file.slice(0, -".json".length))
    .sort();
}

function loadJson(dir: URL, name: string, what: string, known: string[]): string {
  // Only names listed from the folder are read, so a name cannot point outside it.
  if (!known.includes(name)) {
    throw new NotFoundError(`No ${what} named "${name}"; known: ${known.join(", ")}.`);
  }
  const file = new URL(`${name}.json`, dir);
  const text = readFileSync(file, "utf8");
  try {
    return JSON.stringify(JSON.parse(text));
  } catch (error) {
    throw new Error(`${file.pathname} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}
