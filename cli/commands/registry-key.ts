import type { Command } from "commander";
import { type RotationReport, rotateRegistryKey } from "#core/registry/rotate-registry-key.ts";
import { CliError } from "../cli-error.ts";
import { progressBar } from "../progress.ts";
import { withServices, withTargetOptions } from "../wiring.ts";

type RotateOptions = {
  keyId?: string;
  dryRun?: boolean;
  retireAfter: string;
  json?: boolean;
  endpoints?: string;
};

/** Adds `rotate-key` to the `onramp registry` command. */
export function registerRegistryKeyCommands(registry: Command): void {
  withTargetOptions(
    registry
      .command("rotate-key")
      .description(
        "Rotate the registry key that seals per-device secrets: create a new key, re-seal every device secret under it, make it current, then retire old keys no device uses (safe to re-run: an unfinished rotation is finished)",
      )
      .option("--key-id <id>", "id of the new key (default: generated, rk-YYYYMMDD-xxxxxxxx)")
      .option("--dry-run", "count what would be re-sealed; change nothing")
      .option(
        "--retire-after <seconds>",
        "remove old keys only once the new key has been current this long (writers that cached the old keys finish first; re-run after it)",
        "600",
      )
      .option("--json", "print the report as JSON")
      .addHelpText(
        "after",
        [
          "",
          "Exit codes: 0 done (old keys may be kept until --retire-after has passed: re-run then); 3 some rows could not be opened (listed; their keys are kept).",
          "",
          "Examples:",
          "  onramp registry rotate-key --dry-run",
          "  onramp registry rotate-key",
          "  onramp registry rotate-key --key-id rk-2026-q2 --json",
        ].join("\n"),
      ),
  ).action(async (options: RotateOptions) => {
    const retireAfterSeconds = Number(options.retireAfter);
    if (!Number.isFinite(retireAfterSeconds) || retireAfterSeconds < 0) {
      throw new CliError("--retire-after must be a number of seconds, 0 or more");
    }
    const progress = progressBar(options.dryRun ? "counting" : "re-sealing", undefined, !options.json);
    const started = Date.now();
    const report = await withServices(options, (services) =>
      rotateRegistryKey(
        { keyStore: services.registryKeys, rows: services.sealedSecrets },
        {
          ...(options.keyId === undefined ? {} : { keyId: options.keyId }),
          dryRun: options.dryRun === true,
          retireAfterMs: retireAfterSeconds * 1000,
          onProgress: (seen) => progress.update(seen),
        },
      ),
    ).finally(() => progress.stop());
    const seconds = (Date.now() - started) / 1000;
    if (options.json) process.stdout.write(`${JSON.stringify({ ...report, seconds }, null, 2)}\n`);
    else process.stdout.write(describe(report, seconds));
    if (report.unreadable.length > 0) process.exitCode = 3;
  });
}

function describe(report: RotationReport, seconds: number): string {
  const lines: string[] = [];
  if (report.dryRun) {
    lines.push(
      `dry run: key ${report.keyId}${report.created ? " would be created" : ""}; ${report.resealed} device secrets would be re-sealed, ${report.alreadyCurrent} are under it already`,
    );
  } else {
    lines.push(
      `registry key ${report.keyId} is current${report.created ? " (new)" : ""}: re-sealed ${report.resealed} device secrets, ${report.alreadyCurrent} were under it already, ${report.concurrentChanges} changed meanwhile and were re-read (${seconds.toFixed(1)} s)`,
    );
  }
  if (report.retiredKeyIds.length > 0) lines.push(`retired old keys: ${report.retiredKeyIds.join(", ")}`);
  if (report.keptKeyIds.length > 0) {
    lines.push(
      `kept old keys: ${report.keptKeyIds.join(", ")}${report.retireNotBefore ? ` (re-run after ${report.retireNotBefore} to retire them)` : ""}`,
    );
  }
  for (const row of report.unreadable.slice(0, 20))
    lines.push(`  cannot open ${row.serialNumber}: ${row.reason}`);
  if (report.unreadable.length > 20) lines.push(`  ... ${report.unreadable.length - 20} more (see --json)`);
  return `${lines.join("\n")}\n`;
}
