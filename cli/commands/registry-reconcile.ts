import type { Command } from "commander";
import { silentLogger } from "#core/logger.ts";
import { type Finding, type ReconcileScope, reconcileDevices } from "#core/registry/reconcile-devices.ts";
import { CliError } from "../cli-error.ts";
import { progressBar } from "../progress.ts";
import { withServices, withTargetOptions } from "../wiring.ts";

type ReconcileOptions = {
  productKey?: string;
  all?: boolean;
  dryRun?: boolean;
  json?: boolean;
  endpoints?: string;
};

/** Adds `reconcile` to the `onramp registry` command. */
export function registerReconcileCommand(registry: Command): void {
  withTargetOptions(
    registry
      .command("reconcile")
      .description(
        "Compare the registry with AWS IoT and repair what a crash or an outside change left: stale certificate ids, missing attachments, never-activated certificates, status mismatches, expired claims, certificates no record names (safe to re-run)",
      )
      .argument("[serial]", "one device")
      .option("--product-key <key>", "every device of a product")
      .option("--all", "every device of every product, plus orphaned certificates in AWS IoT")
      .option("--dry-run", "report what would be repaired; change nothing")
      .option("--json", "print the findings as JSON")
      .addHelpText(
        "after",
        [
          "",
          "Exit codes: 0 nothing left to repair; 3 findings remain (a dry run, or a repair that failed: see each finding).",
          "",
          "Examples:",
          "  onramp registry reconcile DEMO-0001",
          "  onramp registry reconcile --product-key demo --dry-run",
          "  onramp registry reconcile --all --json",
        ].join("\n"),
      ),
  ).action(async (serial: string | undefined, options: ReconcileOptions) => {
    const scope = scopeOf(serial, options);
    const progress = progressBar("reconciling", undefined, !options.json);
    const report = await withServices(options, async (services) => {
      if ("productKey" in scope && !(await services.registry.getProduct(scope.productKey))) {
        throw new CliError(`Unknown product ${scope.productKey}.`);
      }
      if ("serialNumber" in scope && !(await services.registry.getDevice(scope.serialNumber))) {
        throw new CliError(`No device with serial number ${scope.serialNumber}.`);
      }
      return reconcileDevices({ ...services, logger: silentLogger }, scope, {
        dryRun: options.dryRun === true,
        onProgress: (done) => progress.update(done),
      });
    }).finally(() => progress.stop());
    const remaining = report.findings.filter((f) => !f.repaired);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ ...report, dryRun: options.dryRun === true }, null, 2)}\n`);
    } else {
      for (const f of report.findings) process.stdout.write(`${line(f, options.dryRun === true)}\n`);
      process.stdout.write(
        `checked ${report.checked} device(s): ${report.findings.length} finding(s), ${report.findings.length - remaining.length} repaired\n`,
      );
    }
    if (remaining.length > 0) process.exitCode = 3;
  });
}

function scopeOf(serial: string | undefined, options: ReconcileOptions): ReconcileScope {
  const chosen = [serial !== undefined, options.productKey !== undefined, options.all === true].filter(
    Boolean,
  );
  if (chosen.length !== 1) throw new CliError("Name exactly one of: a SERIAL, --product-key K, or --all.");
  if (serial !== undefined) return { serialNumber: serial };
  if (options.productKey !== undefined) return { productKey: options.productKey };
  return { all: true };
}

function line(f: Finding, dryRun: boolean): string {
  const state = f.repaired ? "repaired" : dryRun ? "would" : "left";
  const ids = [f.serialNumber, f.certificateId ? `certificate ${f.certificateId.slice(0, 12)}…` : undefined]
    .filter(Boolean)
    .join(" ");
  return `${state.padEnd(8)} ${f.kind.padEnd(22)} ${ids}: ${f.action}${f.error ? ` (${f.error})` : ""}`;
}
