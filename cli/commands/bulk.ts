import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CloudFormationClient } from "@aws-sdk/client-cloudformation";
import { S3Client } from "@aws-sdk/client-s3";
import type { Command } from "commander";
import { parseCsr } from "#core/pki/index.ts";
import { DEFAULT_PREFIX, OUTPUTS, stackNames } from "#lib/outputs.ts";
import { LOCAL_BULK_BUCKET, LOCAL_BULK_ROLE_ARN } from "#local/s3/bulk-defaults.ts";
import { readStackOutputs } from "../aws-target.ts";
import { type BulkDevice, type BulkSummary, bulkProvision } from "../bulk/bulk-provision.ts";
import { CliError } from "../cli-error.ts";
import { progressBar } from "../progress.ts";
import { cliIotClient, cliServices, resolveTarget, type Target, withTargetOptions } from "../wiring.ts";

type ProvisionOptions = {
  csrDir?: string;
  file?: string;
  template: string;
  productKey?: string;
  out: string;
  claimTtl: string;
  json?: boolean;
  endpoints?: string;
  aws?: boolean;
  region?: string;
  profile?: string;
  stackPrefix?: string;
};

/** Output keys of the bulk provisioning resources (lib/constructs/bulk-provisioning.ts). */
export const BULK_OUTPUT_KEYS = {
  bucket: "BulkProvisioningBucketName",
  role: "BulkRegistrationRoleArn",
} as const;

/** `onramp bulk provision`: AWS IoT bulk registration of known devices. */
export function registerBulkCommands(program: Command): void {
  const bulk = program
    .command("bulk")
    .description("Bulk provisioning of known devices (AWS IoT registration tasks)");
  withTargetOptions(
    bulk
      .command("provision")
      .description(
        "Provision many known devices in one AWS IoT registration task: each device's CSR (CN = serial) and serial go into a parameter file in S3, the task makes their certificates and things, the registry records are committed (claim/commit: a device another flow holds, or an operator disabled, is left alone) and each certificate is written to {serial}.crt. Re-running resumes an interrupted run and skips devices already done.",
      )
      .option("--csr-dir <dir>", "a folder of PEM CSRs (*.csr, *.pem); each CSR's CN is the device's serial")
      .option(
        "--file <params.jsonl>",
        "one JSON object per line with SerialNumber and CSR (other fields are passed to the template)",
      )
      .option("--template <name>", "templates/bulk/<name>.json, or a path to a template file", "bulk-device")
      .option(
        "--product-key <key>",
        "devices missing from the registry are imported under this product; others must belong to it",
      )
      .option("--out <dir>", "where {serial}.crt files (and an unfinished run's state) go", "bulk-certs")
      .option("--claim-ttl <minutes>", "how long the claims block other flows (must outlast the task)", "60")
      .option("--json", "print the summary as JSON")
      .addHelpText(
        "after",
        [
          "",
          "Exit codes: 0 every device provisioned or already done; 3 some devices failed or were skipped (see the summary).",
          "",
          "Examples:",
          "  onramp bulk provision --csr-dir ./csrs --product-key thermo",
          "  onramp bulk provision --file devices.jsonl --out ./certs --json",
          "  onramp bulk provision --csr-dir ./csrs --aws --region eu-west-1",
        ].join("\n"),
      ),
  ).action(async (options: ProvisionOptions) => {
    if (!options.csrDir === !options.file) throw new CliError("Pass exactly one of --csr-dir and --file.");
    const claimTtlMinutes = Number(options.claimTtl);
    if (!Number.isFinite(claimTtlMinutes) || claimTtlMinutes < 1)
      throw new CliError("--claim-ttl must be >= 1 (minutes).");
    const templateBody = loadBulkTemplate(options.template);
    const devices = options.csrDir
      ? await devicesFromCsrDir(options.csrDir)
      : devicesFromFile(options.file ?? "");
    if (devices.length === 0) throw new CliError("No devices to provision.");
    const target = await resolveTarget(options);
    const { bucket, roleArn } = await bulkResources(target, options);
    const services = cliServices(target);
    const iotClient = cliIotClient(target);
    const s3 = cliS3Client(target);
    const bars = { claim: "claiming", task: "registration task", commit: "committing" } as const;
    let phase: keyof typeof bars | undefined;
    let bar = progressBar("", 0, false);
    let summary: BulkSummary;
    try {
      summary = await bulkProvision(
        { registry: services.registry, iot: services.iot, iotClient, s3 },
        devices,
        {
          bucket,
          roleArn,
          templateBody,
          outDir: resolve(options.out),
          ...(options.productKey ? { productKey: options.productKey } : {}),
          claimTtlMs: claimTtlMinutes * 60_000,
          pollMs: target.kind === "local" ? 200 : 2000,
          onProgress: (next, done, total) => {
            if (next !== phase) {
              bar.stop();
              phase = next;
              bar = progressBar(bars[next], total, !options.json);
            }
            bar.update(done);
          },
        },
      );
    } finally {
      bar.stop();
      services.close();
      iotClient.destroy();
      s3.destroy();
    }
    if (options.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      for (const d of summary.devices) {
        if (d.outcome !== "provisioned") {
          process.stdout.write(`${d.serialNumber}: ${d.outcome}${d.reason ? ` (${d.reason})` : ""}\n`);
        }
      }
      const c = summary.counts;
      process.stdout.write(
        `${[
          `task ${summary.taskId ?? "(none: nothing to register)"}${summary.taskStatus ? ` ${summary.taskStatus}` : ""}`,
          `devices ${summary.total}: ${c.provisioned} provisioned, ${c["already-provisioned"] + c["certificate-restored"]} already done (${c["certificate-restored"]} certificate files restored), ${c["skipped-in-progress"]} held by another flow, ${c["skipped-disabled"] + c["skipped-revoked"]} disabled/revoked, ${c.failed} failed`,
          `certificates in ${resolve(options.out)}`,
        ].join("\n")}\n`,
      );
    }
    const clean =
      summary.counts.failed +
      summary.counts["skipped-in-progress"] +
      summary.counts["skipped-disabled"] +
      summary.counts["skipped-revoked"];
    if (clean > 0) process.exitCode = 3;
  });
}

/** An S3 client for a target (the local stack: its AWS endpoint, path-style, its key pair). */
export function cliS3Client(target: Target): S3Client {
  return new S3Client({
    region: target.region,
    ...(target.credentials ? { credentials: target.credentials } : {}),
    ...(target.awsEndpoint ? { endpoint: target.awsEndpoint, forcePathStyle: true } : {}),
    maxAttempts: 5,
  });
}

/** The bucket and role: the local stack's fixed ones, or the deployed stack's outputs. */
async function bulkResources(
  target: Target,
  options: ProvisionOptions,
): Promise<{ bucket: string; roleArn: string }> {
  if (target.kind === "local") return { bucket: LOCAL_BULK_BUCKET, roleArn: LOCAL_BULK_ROLE_ARN };
  const cfn = new CloudFormationClient({ region: target.region });
  try {
    const stack = stackNames(options.stackPrefix ?? DEFAULT_PREFIX).provisioning;
    const outputs = await readStackOutputs(cfn, stack);
    const bucket = outputs[OUTPUTS.bulkProvisioningBucketName];
    const roleArn = outputs[OUTPUTS.bulkRegistrationRoleArn];
    if (!bucket || !roleArn) {
      throw new CliError(
        `stack ${stack} has no bulk provisioning outputs (${BULK_OUTPUT_KEYS.bucket}); redeploy it`,
      );
    }
    return { bucket, roleArn };
  } finally {
    cfn.destroy();
  }
}

/** `templates/bulk/<name>.json` or a file path; compact JSON for StartThingRegistrationTask. */
export function loadBulkTemplate(nameOrPath: string): string {
  const bundled = new URL(`../../templates/bulk/${nameOrPath}.json`, import.meta.url);
  const file = /^[A-Za-z0-9_-]+$/.test(nameOrPath) && existsSync(bundled) ? bundled : resolve(nameOrPath);
  if (!existsSync(file)) throw new CliError(`No template ${nameOrPath} (templates/bulk/ or a file path).`);
  try {
    return JSON.stringify(JSON.parse(readFileSync(file, "utf8")));
  } catch {
    throw new CliError(`The template ${nameOrPath} is not valid JSON.`);
  }
}

async function devicesFromCsrDir(dir: string): Promise<BulkDevice[]> {
  if (!existsSync(dir)) throw new CliError(`No folder ${dir}.`);
  const devices: BulkDevice[] = [];
  const seen = new Set<string>();
  for (const name of readdirSync(dir).sort()) {
    if (!/\.(csr|pem)$/.test(name)) continue;
    const csrPem = readFileSync(join(dir, name), "utf8");
    let serialNumber: string | undefined;
    try {
      serialNumber = (await parseCsr(csrPem)).subject.commonName;
    } catch (error) {
      throw new CliError(
        `${name}: not a valid CSR (${error instanceof Error ? error.message : String(error)}).`,
      );
    }
    if (!serialNumber) throw new CliError(`${name}: the CSR has no CN (the CN is the device's serial).`);
    if (seen.has(serialNumber)) throw new CliError(`${name}: serial ${serialNumber} appears twice.`);
    seen.add(serialNumber);
    devices.push({ serialNumber, csrPem });
  }
  return devices;
}

function devicesFromFile(file: string): BulkDevice[] {
  if (!existsSync(file)) throw new CliError(`No file ${file}.`);
  const devices: BulkDevice[] = [];
  const seen = new Set<string>();
  for (const [index, line] of readFileSync(file, "utf8").split("\n").entries()) {
    if (line.trim() === "") continue;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new CliError(`${file}:${index + 1}: not JSON.`);
    }
    const { SerialNumber, CSR, ...rest } = row;
    if (typeof SerialNumber !== "string" || typeof CSR !== "string") {
      throw new CliError(`${file}:${index + 1}: SerialNumber and CSR (strings) are required.`);
    }
    if (seen.has(SerialNumber))
      throw new CliError(`${file}:${index + 1}: serial ${SerialNumber} appears twice.`);
    seen.add(SerialNumber);
    const parameters = Object.fromEntries(
      Object.entries(rest).filter(([, v]) => typeof v === "string"),
    ) as Record<string, string>;
    devices.push({ serialNumber: SerialNumber, csrPem: CSR, parameters });
  }
  return devices;
}
