import { createReadStream, existsSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { parse } from "csv-parse";
import { resetRegistration } from "#core/registration/reset-registration.ts";
import {
  IMPORT_COLUMNS,
  type ImportRow,
  importDevices,
  type RejectedRow,
} from "#core/registry/import-devices.ts";
import { disableDevice, enableDevice, revokeDevice } from "#core/registry/manage-devices.ts";
import type { Device } from "#core/registry/model.ts";
import { requestRotations } from "#core/rotation/request-rotations.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";
import { progressBar } from "../progress.ts";
import { withServices, withTargetOptions } from "../wiring.ts";
import { registerRegistryKeyCommands } from "./registry-key.ts";
import { registerReconcileCommand } from "./registry-reconcile.ts";
import { parseDuration, registerRotateCommand } from "./registry-rotate.ts";

type Common = { json?: boolean; endpoints?: string };

/** `onramp registry import | list | show | disable | enable | revoke | reset | rotate-key | reconcile` */
export function registerRegistryCommands(program: Command): void {
  const registry = program
    .command("registry")
    .description("The serial-number registry: import and manage devices");
  registerRegistryKeyCommands(registry);
  registerReconcileCommand(registry);
  registerRotateCommand(registry);

  withTargetOptions(
    registry
      .command("import")
      .description(
        "Import serial numbers from a CSV file (streamed; safe to re-run: existing serials are skipped)",
      )
      .argument(
        "<file>",
        `CSV with a header row: ${IMPORT_COLUMNS.join(",")} (productKey and deviceSecret optional; deviceSecret: the device's own secret, sealed at import — the DeviceSecret an aliyun or enos device was born with; without it a device-secret product's devices use one derived from the product secret)`,
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
      const header = await readHeader(file);
      if (!header.includes("productKey") && !options.productKey) {
        throw new CliError(
          `${file} has no productKey column: pass --product-key KEY (the product of every row), or add a productKey column.`,
          1,
          "NO_PRODUCT_KEY",
        );
      }
      const started = Date.now();
      // Rows refused before the registry sees them (the CSV's shape), merged into the report.
      const edgeRejected: RejectedRow[] = [];
      const report = await withServices(options, async (services) => {
        if (options.productKey && !(await services.registry.getProduct(options.productKey))) {
          throw new CliError(
            `unknown product ${options.productKey} (\`onramp products list\` shows them).`,
            1,
            "UNKNOWN_PRODUCT",
          );
        }
        const progress = progressBar("importing", await countDataLines(file), !options.json);
        return importDevices(services, csvRows(file, edgeRejected, options.productKey), {
          ...(options.productKey ? { defaultProductKey: options.productKey } : {}),
          concurrency,
          onProgress: (done) => progress.update(done + edgeRejected.length),
        }).finally(() => progress.stop());
      });
      report.rows += edgeRejected.length;
      report.rejected = [...edgeRejected, ...report.rejected].sort((a, b) => a.line - b.line);
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
      .option(
        "--expiring-within <duration>",
        "only provisioned devices whose certificate expires within this (30d, 12h, 90m); reads each certificate",
      )
      .option("--json", "print JSON"),
  ).action(
    async (
      options: Common & { productKey: string; limit: string; cursor?: string; expiringWithin?: string },
    ) => {
      const page = await withServices(options, async (s) => {
        if (!(await s.registry.getProduct(options.productKey))) {
          throw new CliError(
            `unknown product ${options.productKey} (\`onramp products list\` shows them).`,
            1,
            "UNKNOWN_PRODUCT",
          );
        }
        if (options.expiringWithin !== undefined) {
          // The rotation report in a dry run: nothing is sent; "asked" means "expiring".
          const statuses = await requestRotations(
            { ...s, publisher: { publish: async () => undefined } },
            { productKey: options.productKey },
            { expiringWithinMs: parseDuration(options.expiringWithin), dryRun: true },
          );
          return {
            devices: statuses
              .filter((d) => d.state !== "skipped")
              .map((d) => ({ ...d, state: d.state === "pending" ? "rotating" : "expiring" })),
          };
        }
        return s.registry.listDevices(options.productKey, {
          limit: Number(options.limit),
          ...(options.cursor ? { cursor: options.cursor } : {}),
        });
      });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
        return;
      }
      for (const d of page.devices) {
        const state = "notAfter" in d ? `${d.state}\tnotAfter ${d.notAfter}` : d.status;
        process.stdout.write(`${d.serialNumber}\t${state}\t${d.certificateId ?? "-"}\n`);
      }
      if ("cursor" in page && page.cursor) process.stderr.write(`more: --cursor ${page.cursor}\n`);
    },
  );

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

  withTargetOptions(
    registry
      .command("reset")
      .description(
        "Let a secret-born device register (aliyun-dynamic) or activate (enos) again, e.g. after a factory reset: its issued secret or token stops working",
      )
      .argument("<serial>", "serial number (the device name / device key)")
      .option("--json", "print JSON")
      .addHelpText("after", "\nExample:\n  onramp registry reset plug-0001"),
  ).action(async (serial: string, options: Common) => {
    const device = await withServices(options, (s) => resetRegistration(s, serial));
    printDevice(device, options.json);
  });
}

function printDevice(device: Device, json: boolean | undefined): void {
  const { sealedSecret, sealedToken, deviceTokenHash, claim, ...visible } = device;
  printResult(
    {
      ...visible,
      ownSecret: sealedSecret ? "yes (sealed)" : "no",
      ...(deviceTokenHash ? { deviceToken: "issued (kept hashed)" } : {}),
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

/** The CSV's header row (checked), read without the rest of the file. */
async function readHeader(file: string): Promise<string[]> {
  const parser = createReadStream(file).pipe(parse({ to_line: 1, trim: true, bom: true }));
  try {
    for await (const record of parser as AsyncIterable<string[]>) return checkHeader(record);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  throw new CliError(`${file} is empty: the first line must be a header (${IMPORT_COLUMNS.join(",")}).`);
}

/** Lines after the header that hold something: the progress bar's total, known before the first row. */
async function countDataLines(file: string): Promise<number> {
  let lines = 0;
  let blank = true;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (const byte of chunk) {
      if (byte === 0x0a) {
        if (!blank) lines++;
        blank = true;
      } else if (byte !== 0x0d && byte !== 0x20 && byte !== 0x09) blank = false;
    }
  }
  if (!blank) lines++;
  return Math.max(0, lines - 1);
}

/**
 * Streams CSV rows with their line numbers. Rows the file's shape already condemns (more values
 * than the header has columns; no product key and no --product-key) go to `rejected` instead; a
 * malformed line becomes a row the import rejects.
 */
async function* csvRows(
  file: string,
  rejected: RejectedRow[],
  defaultProductKey: string | undefined,
): AsyncGenerator<ImportRow> {
  const parser = createReadStream(file).pipe(
    parse({ skip_empty_lines: true, trim: true, relax_column_count: true, info: true, bom: true }),
  );
  let header: string[] | undefined;
  try {
    for await (const entry of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = entry.info.lines;
      if (!header) {
        header = checkHeader(entry.record);
        continue;
      }
      const values = entry.record;
      if (values.length > header.length) {
        rejected.push({
          line,
          field: `column ${header.length + 1}`,
          reason: `${values.length} values, but the header names ${header.length} column${header.length === 1 ? "" : "s"} (${header.join(",")})`,
        });
        continue;
      }
      const record = Object.fromEntries(header.map((name, i) => [name, values[i]]));
      if (!record.productKey && !defaultProductKey) {
        rejected.push({ line, field: "productKey", reason: "empty, and no --product-key was given" });
        continue;
      }
      yield { line, record };
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new CliError(`${file}: ${message}`);
  }
}
