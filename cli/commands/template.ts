import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import {
  type CertificateParameters,
  describePlan,
  evaluateTemplate,
  TemplateError,
} from "#core/provisioning-template/index.ts";
import {
  listPolicyDocuments,
  listProvisioningTemplates,
  loadProvisioningTemplate,
  POLICY_NAMES,
} from "#templates/catalog.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";

type RenderOptions = {
  param: Record<string, string>;
  certId?: string;
  certCn?: string;
  certCountry?: string;
  certOrg?: string;
  certOu?: string;
  certState?: string;
  certSerial?: string;
  certDnQualifier?: string;
  json?: boolean;
};

/** The certificate fields a JITP template can read, by the option that sets them. */
const CERTIFICATE_OPTIONS = [
  ["certCn", "commonName", "--cert-cn <cn>", "AWS::IoT::Certificate::CommonName"],
  ["certCountry", "country", "--cert-country <c>", "AWS::IoT::Certificate::Country"],
  ["certOrg", "organization", "--cert-org <o>", "AWS::IoT::Certificate::Organization"],
  ["certOu", "organizationalUnit", "--cert-ou <ou>", "AWS::IoT::Certificate::OrganizationalUnit"],
  ["certState", "stateName", "--cert-state <st>", "AWS::IoT::Certificate::StateName"],
  ["certSerial", "serialNumber", "--cert-serial <serial>", "AWS::IoT::Certificate::SerialNumber"],
  [
    "certDnQualifier",
    "distinguishedNameQualifier",
    "--cert-dn-qualifier <dnq>",
    "AWS::IoT::Certificate::DistinguishedNameQualifier",
  ],
] as const satisfies readonly (readonly [keyof RenderOptions, keyof CertificateParameters, string, string])[];

/**
 * Adds `onramp template list` and `onramp template render <file-or-name> --param k=v ...`, which
 * evaluates a provisioning template (a file, or a name from templates/provisioning/) and shows what
 * AWS IoT would create, without creating anything.
 */
export function registerTemplateCommands(program: Command): void {
  const template = program
    .command("template")
    .description("provisioning templates: list the shipped ones, render what one would create");

  template
    .command("list")
    .description("list the provisioning templates and policy documents in templates/")
    .option("--json", "print JSON")
    .action((options: { json?: boolean }) => {
      const templates = listProvisioningTemplates().map((name) => ({
        name,
        parameters: declaredParameters(loadProvisioningTemplate(name)),
      }));
      const policies = listPolicyDocuments().map((name) => ({
        name,
        ...(POLICY_NAMES[name] ? { policyName: POLICY_NAMES[name] } : {}),
      }));
      if (options.json) {
        printResult({ templates, policies }, true);
        return;
      }
      const width = Math.max(...templates.map((t) => t.name.length), ...policies.map((p) => p.name.length));
      const lines = ["provisioning templates (parameters)"];
      for (const t of templates) lines.push(`  ${t.name.padEnd(width)}  ${t.parameters.join(", ")}`);
      lines.push("policy documents");
      for (const p of policies) {
        lines.push(
          `  ${p.name.padEnd(width)}  ${p.policyName ? `created as "${p.policyName}"` : ""}`.trimEnd(),
        );
      }
      process.stdout.write(`${lines.join("\n")}\n`);
    });

  const render = template
    .command("render")
    .description("show what a provisioning template would create, without creating anything")
    .argument("<file-or-name>", "a template file, or the name of one in templates/provisioning/")
    .option("--param <key=value>", "a template parameter (repeatable)", collectParameter, {})
    .option("--cert-id <id>", "JITP: the certificate id (AWS::IoT::Certificate::Id)");
  for (const [, , flags, parameter] of CERTIFICATE_OPTIONS) {
    render.option(flags, `JITP: ${parameter} (needs --cert-id)`);
  }
  render.option("--json", "print the plan as JSON").action((ref: string, options: RenderOptions) => {
    const { source, body } = readTemplate(ref);
    const certificate = certificateFrom(options);
    let plan: ReturnType<typeof evaluateTemplate>;
    try {
      plan = evaluateTemplate(body, options.param, certificate ? { certificate } : undefined);
    } catch (error) {
      if (error instanceof TemplateError) throw new CliError(`${source}: ${error.message}`);
      throw error;
    }
    if (options.json) {
      printResult(plan, true);
      return;
    }
    process.stdout.write(`${[`${source} would:`, ...describePlan(plan)].join("\n")}\n`);
  });
}

function collectParameter(value: string, previous: Record<string, string>): Record<string, string> {
  const equals = value.indexOf("=");
  if (equals <= 0) throw new InvalidArgumentError("expected key=value, e.g. --param SerialNumber=SN-0001");
  const key = value.slice(0, equals);
  if (Object.hasOwn(previous, key)) throw new InvalidArgumentError(`parameter "${key}" is given twice`);
  return Object.fromEntries([...Object.entries(previous), [key, value.slice(equals + 1)]]);
}

function certificateFrom(options: RenderOptions): CertificateParameters | undefined {
  const given = CERTIFICATE_OPTIONS.filter(([option]) => options[option] !== undefined);
  if (options.certId === undefined) {
    if (given.length === 0) return undefined;
    throw new CliError(`${given.map(([, , flags]) => flags.split(" ")[0]).join(", ")} require --cert-id`);
  }
  const certificate: CertificateParameters = { id: options.certId };
  for (const [option, field] of given) certificate[field] = options[option] as string;
  return certificate;
}

/** A catalog name (no path separator, no .json) is looked up first, then a file of that name. */
function readTemplate(ref: string): { source: string; body: string } {
  const looksLikePath = /[\\/]/.test(ref) || ref.endsWith(".json");
  const known = listProvisioningTemplates();
  if (!looksLikePath && known.includes(ref)) {
    return { source: `template ${ref}`, body: loadProvisioningTemplate(ref) };
  }
  try {
    return { source: ref, body: readFileSync(ref, "utf8") };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !looksLikePath) {
      throw new CliError(`no template named "${ref}" (known: ${known.join(", ")}) and no such file`);
    }
    const reason =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (code ?? String(error));
    throw new CliError(`cannot read ${ref}: ${reason}`);
  }
}

function declaredParameters(body: string): string[] {
  const template = JSON.parse(body) as { Parameters?: Record<string, unknown> };
  return Object.keys(template.Parameters ?? {});
}
