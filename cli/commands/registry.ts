import { createReadStream, existsSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { parse } from "csv-parse";
import { IMPORT_COLUMNS, type ImportRow, importDevices } from "#core/registry/import-devices.ts";
import { disableDevice, enableDevice, revokeDevice } from "#core/registry/manage-devices.ts";
import type { Device } from "#core/registry/model.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";
import { progressBar } from "../progress.ts";
import { withServices, withTargetOptions } from "../wiring.ts";
import { registerRegistryKeyCommands } from "./registry-key.ts";
import { registerReconcileCommand } from "./registry-reconcile.ts";

type Common = { json?: boolean; endpoints?: string };

/** `onramp registry import | list | show | disable | enable | revoke | rotate-key | reconcile` */
export function registerRegistryCommands(program: Command): void {
  const registry = program
    .command("registry")
    .description("The serial-number registry: import and manage devices");
  registerRegistryKeyCommands(registry);
  registerReconcileCommand(registry);

  withTargetOptions(
    registry
      .command("import")
      .description(
        "Import serial numbers from a CSV file (streamed; safe to re-run: existing serials are skipped)",
      )
      .argument(
        "<file>",
        `CSV with a header row: ${IMPORT_COLUMNS.join(",")} (productKey and deviceSecret optional)`,
      )
      .option("--product-key <key>", "product for rows without a productKey column")
      .option("--rejected <file>", "write rejected rows (line,field,reason) to this CSV")
      .option("--concurrency <n>", "batches in flight", "4")
      .option("--json", "print the report as JSON")
      .addHelpText(
        "after",
        "\nExample:\n  onramp registry import serials.csv --product-key thermo-v2 --rejected rejected.csv",
      ),
  ).action(
    async (
      file: string,
      options: Common & { productKey?: string; rejected?: string; concurrency: string },
    ) => {
      if (!existsSync(file)) throw new CliError(`No such file: ${file}`);
      const concurrency = Number(options.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) {
        throw new CliError("--concurrency must be a whole number from 1 to 32");
      }
      const progress = progressBar("importing", undefined, !options.json);
      const started = Date.now();
      const report = await withServices(options, (services) =>
        importDevices(services, csvRows(file), {
          ...(options.productKey ? { defaultProductKey: options.productKey } : {}),
          concurrency,
          onProgress: (done) => progress.update(done),
        }),
      ).finally(() => progress.stop());
      const seconds = (Date.now() - started) / 1000;
      if (options.rejected) {
        const lines = report.rejected.map((r) => `${r.line},${r.field},"${r.reason.replaceAll('"', '""')}"`);
        writeFileSync(options.rejected, `line,field,reason\n${lines.join("\n")}\n`);
      }
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ ...report, seconds }, null, 2)}\n`);
      } else {
        process.stdout.write(
          `rows ${report.rows}: written ${report.written}, already present ${report.skippedExisting}, rejected ${report.rejected.length} (${seconds.toFixed(1)} s)\n`,
        );
        for (const r of report.rejected.slice(0, 20))
          process.stdout.write(`  line ${r.line}: ${r.field}: ${r.reason}\n`);
        if (report.rejected.length > 20)
          process.stdout.write(`  ... ${report.rejected.length - 20} more (see --rejected)\n`);
      }
      if (report.rejected.length > 0) process.exitCode = 3;
    },
  );

  withTargetOptions(
    registry
      .command("list")
      .description("List the devices of a product")
      .requiredOption("--product-key <key>", "product key")
      .option("--limit <n>", "page size", "100")
      .option("--cursor <cursor>", "continue after a previous page")
      .option("--json", "print JSON"),
  ).action(async (options: Common & { productKey: string; limit: string; cursor?: string }) => {
    const page = await withServices(options, (s) =>
      s.registry.listDevices(options.productKey, {
        limit: Number(options.limit),
        ...(options.cursor ? { cursor: options.cursor } : {}),
      }),
    );
    if (options.json) {
      process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
      return;
    }
    for (const d of page.devices)
      process.stdout.write(`${d.serialNumber}\t${d.status}\t${d.certificateId ?? "-"}\n`);
    if (page.cursor) process.stderr.write(`more: --cursor ${page.cursor}\n`);
  });

  withTargetOptions(
    registry
      .command("show")
      .description("Show one device")
      .argument("<serial>", "serial number")
      .option("--json", "print JSON"),
  ).action(async (serial: string, options: Common) => {
    const device = await withServices(options, (s) => s.registry.getDevice(serial));
    if (!device) throw new CliError(`No device with serial number ${serial}.`, 1, "DEVICE_NOT_FOUND");
    printDevice(device, options.json);
  });

  const statusCommand = (name: string, description: string, run: typeof disableDevice) =>
    withTargetOptions(
      registry
        .command(name)
        .description(description)
        .argument("<serial>", "serial number")
        .option("--reason <text>", "why (kept in the registry)")
        .option("--json", "print JSON"),
    ).action(async (serial: string, options: Common & { reason?: string }) => {
      const device = await withServices(options, (s) => run(s, serial, options.reason));
      printDevice(device, options.json);
    });
  statusCommand(
    "disable",
    "Disable a device: no provisioning, certificate set INACTIVE (reversible)",
    disableDevice,
  );
  statusCommand("enable", "Re-enable a disabled device (certificate set ACTIVE again)", (deps, serial) =>
    enableDevice(deps, serial),
  );
  statusCommand("revoke", "Revoke a device for good: no provisioning, certificate REVOKED", revokeDevice);
}

function printDevice(device: Device, json: boolean | undefined): void {
  const { sealedSecret, claim, ...visible } = device;
  printResult(
    {
      ...visible,
      ownSecret: sealedSecret ? "yes (sealed)" : "no",
      ...(claim ? { claim: "in progress" } : {}),
    },
    json,
  );
}

function checkHeader(header: string[]): string[] {
  const unknown = header.filter((h) => !(IMPORT_COLUMNS as readonly string[]).includes(h));
  if (!header.includes("serialNumber") || unknown.length > 0) {
    throw new CliError(
      `line 1: the header must name the columns ${IMPORT_COLUMNS.join(", ")} (serialNumber required)${unknown.length ? `; unknown: ${unknown.join(", ")}` : ""}`,
    );
  }
  return header;
}

/** Streams CSV rows with their line numbers; a malformed line becomes a row the import rejects. */
async function* csvRows(file: string): AsyncGenerator<ImportRow> {
  const parser = createReadStream(file).pipe(
    parse({
      columns: checkHeader,
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true,
      info: true,
      bom: true,
    }),
  );
  try {
    for await (const entry of parser as AsyncIterable<{
      record: Record<string, string>;
      info: { lines: number };
    }>) {
      yield { line: entry.info.lines, record: entry.record };
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new CliError(`${file}: ${message}`);
  }
}
