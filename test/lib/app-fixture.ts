/**
 * The synthesized iot-onramp app, built once per test process (node:test runs each file in its
 * own process) and shared by every test in it. Bundling is skipped (`aws:cdk:bundling-stacks`:
 * none) except in {@link bundledApp}: assertions on templates do not need the Lambda code.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Template } from "aws-cdk-lib/assertions";
import type { CloudAssembly } from "aws-cdk-lib/cx-api";
import { createOnrampApp, type OnrampApp } from "#lib/onramp-app.ts";

/** A synthesized app: its stacks' templates and the cloud assembly. */
export type SynthesizedApp = OnrampApp & {
  assembly: CloudAssembly;
  registryTemplate: Template;
  provisioningTemplate: Template;
};

/** Context that turns on every optional feature (customer key, domain, WAF, execution logs). */
export const FULL_OPTIONS_CONTEXT = {
  destroyOnRemoval: "true",
  tableEncryption: "customer-managed",
  domainName: "vend.example.com",
  certificateArn: "arn:aws:acm:eu-west-1:111111111111:certificate/00000000-0000-0000-0000-000000000000",
  wafWebAclArn:
    "arn:aws:wafv2:eu-west-1:111111111111:regional/webacl/onramp/00000000-0000-0000-0000-000000000000",
  apiExecutionLogLevel: "ERROR",
  apiCloudWatchRole: "true",
  apiRateLimit: "5",
  apiBurstLimit: "7",
  logRetentionDays: "30",
};

const cache = new Map<string, SynthesizedApp>();

function synthesize(key: string, context: Record<string, unknown>, bundle: boolean): SynthesizedApp {
  const cached = cache.get(key);
  if (cached) return cached;
  const onramp = createOnrampApp(
    {
      outdir: mkdtempSync(join(tmpdir(), `onramp-cdk-${key}-`)),
      // CDK's built-in CloudFormation schema check (warnings only) costs seconds of WebAssembly per
      // process; `npx cdk synth` runs it. cdk-nag, the check these tests are about, still runs.
      builtinCloudFormationValidation: false,
      context: {
        ...(bundle ? { "aws:cdk:enable-asset-metadata": true } : { "aws:cdk:bundling-stacks": [] }),
        ...context,
      },
    },
    {}, // no CDK_DEFAULT_ACCOUNT/REGION: environment-agnostic, as offline synth is
  );
  const assembly = onramp.app.synth();
  const synthesized: SynthesizedApp = {
    ...onramp,
    assembly,
    registryTemplate: Template.fromStack(onramp.registry),
    provisioningTemplate: Template.fromStack(onramp.provisioning),
  };
  cache.set(key, synthesized);
  return synthesized;
}

/** The app with default settings (what `cdk synth` builds with an empty context). */
export function defaultApp(): SynthesizedApp {
  return synthesize("default", {}, false);
}

/** The app with {@link FULL_OPTIONS_CONTEXT}. */
export function fullOptionsApp(): SynthesizedApp {
  return synthesize("full", FULL_OPTIONS_CONTEXT, false);
}

/**
 * The default app plus some context (for example `{ waf: "false" }`), synthesized once per test
 * process under `key`.
 */
export function appWithContext(key: string, context: Record<string, string>): SynthesizedApp {
  if (key === "default" || key === "full" || key === "bundled") throw new Error(`reserved key ${key}`);
  return synthesize(key, context, false);
}

/** The default app with the Lambda really bundled (asset paths in the template metadata). */
export function bundledApp(): SynthesizedApp {
  return synthesize("bundled", {}, true);
}

/** Resources of one type in a template, by logical id. */
export function resourcesOfType(template: Template, type: string): Record<string, CfnResourceJson> {
  return template.findResources(type) as Record<string, CfnResourceJson>;
}

/** The one resource of a type; fails when there is not exactly one. */
export function onlyResource(template: Template, type: string): CfnResourceJson {
  const found = Object.values(resourcesOfType(template, type));
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0]!;
}

/**
 * The one resource of a type whose logical id is `prefix` plus CDK's 8-character hash, where the
 * prefix is the construct path without slashes (`VendFunction`, `JitrRoleDefaultPolicy`); fails
 * when there is not exactly one.
 */
export function resourceAt(template: Template, type: string, prefix: string): CfnResourceJson {
  const pattern = new RegExp(`^${prefix}[0-9A-F]{8}$`);
  const found = Object.entries(resourcesOfType(template, type)).filter(([id]) => pattern.test(id));
  if (found.length !== 1) throw new Error(`expected one ${type} at ${prefix}, found ${found.length}`);
  return found[0]![1];
}

/** The logical id of {@link resourceAt}'s resource (for `Ref` / `Fn::GetAtt` comparisons). */
export function logicalIdAt(template: Template, type: string, prefix: string): string {
  const pattern = new RegExp(`^${prefix}[0-9A-F]{8}$`);
  const found = Object.keys(resourcesOfType(template, type)).filter((id) => pattern.test(id));
  if (found.length !== 1) throw new Error(`expected one ${type} at ${prefix}, found ${found.length}`);
  return found[0]!;
}

/** A resource as it appears in a synthesized template (CloudFormation JSON is untyped). */
export type CfnResourceJson = {
  Type: string;
  // biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON is untyped.
  Properties: Record<string, any>;
  // biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON is untyped.
  Metadata?: Record<string, any>;
};

/**
 * A CloudFormation value as readable text: `Fn::Join` is joined, `Ref` becomes `${Name}`,
 * `Fn::GetAtt` `${Name.Attr}`, `Fn::ImportValue` `${import:Name}`; plain strings stay as they are.
 */
export function cfnText(value: unknown): string {
  if (typeof value === "string") return value;
  const v = value as Record<string, unknown>;
  if (Array.isArray(v)) return v.map(cfnText).join(",");
  if ("Fn::Join" in v) {
    const [separator, parts] = v["Fn::Join"] as [string, unknown[]];
    return parts.map(cfnText).join(separator);
  }
  if ("Ref" in v) return `\${${String(v.Ref)}}`;
  if ("Fn::GetAtt" in v) return `\${${(v["Fn::GetAtt"] as string[]).join(".")}}`;
  if ("Fn::ImportValue" in v) return `\${import:${cfnText(v["Fn::ImportValue"])}}`;
  return JSON.stringify(value);
}
