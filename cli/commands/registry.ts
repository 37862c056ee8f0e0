import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { parse } from "csv-parse";
import * as z from "zod";
import { resetRegistration } from "#core/registration/reset-registration.ts";
import {
  IMPORT_COLUMNS,
  type ImportRow,
  importDevices,
  type RejectedRow,
} from "#core/registry/import-devices.ts";
import { disableDevice, enableDevice, revokeDevice } from "#core/registry/manage-devices.ts";
import type { Device } from "#core/registry/model.ts";
import type { ImportOutcome } from "#core/registry/ports.ts";
import { requestRotations } from "#core/rotation/request-rotations.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";
import { progressBar } from "../progress.ts";
import { type Target, withServices, withTargetOptions } from "../wiring.ts";
import { registerRegistryKeyCommands } from "./registry-key.ts";
import { registerReconcileCommand } from "./registry-reconcile.ts";
import { parseDuration, registerRotateCommand } from "./registry-rotate.ts";

type Common = { json?: boolean; endpoints?: string };

/** `onramp registry import | migrate | list | show | disable | enable | revoke | reset | rotate-key | reconcile` */
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
        "Import serial numbers from a CSV file (streamed; resumable: a stopped import continues where it stopped; safe to re-run: existing serials are skipped)",
      )
      .argument(
        "<file>",
        `CSV with a header row: ${IMPORT_COLUMNS.join(",")} (productKey and deviceSecret optional; deviceSecret: the device's own secret, sealed at import — the DeviceSecret an aliyun or enos device was born with; without it a device-secret product's devices use one derived from the product secret)`,
      )
      .option("--product-key <key>", "product for rows without a productKey column")
      .option("--rejected <file>", "write rejected rows (line,field,reason) to this CSV")
      .option("--concurrency <n>", "batches in flight", "4")
      .option(
        "--checkpoint <file>",
        "where progress is kept while importing (default: <file>.import-checkpoint.json); removed when the import completes",
      )
      .option("--restart", "ignore a checkpoint and start from the first row (still skips existing serials)")
      .option("--json", "print the report as JSON")
      .addHelpText(
        "after",
        [
          "",
          "Throttling and unprocessed items are retried with exponential backoff and jitter, never given",
          "up on. Killed or failed midway, the same command continues after the last line every earlier",
          "row is written up to (the checkpoint is bound to the file's SHA-256: an edited file starts over).",
          "",
          "Example:",
          "  onramp registry import serials.csv --product-key thermo-v2 --rejected rejected.csv",
        ].join("\n"),
      ),
  ).action(
    async (
      file: string,
      options: Common & {
        productKey?: string;
        rejected?: string;
        concurrency: string;
        checkpoint?: string;
        restart?: boolean;
      },
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
      const scan = await scanFile(file);
      const checkpointFile = options.checkpoint ?? `${file}.import-checkpoint.json`;
      let resume: Checkpoint | undefined;
      // Rows refused before the registry sees them (the CSV's shape), merged into the report.
      const edgeRejected: RejectedRow[] = [];
      const report = await withServices(options, async (services, target) => {
        // A checkpoint belongs to this file, product and registry table: resuming against another
        // stack would skip rows that table never got.
        const registry = registryIdentity(target);
        resume = options.restart
          ? undefined
          : readCheckpoint(
              checkpointFile,
              { sha256: scan.sha256, productKey: options.productKey, registry },
              options.json,
            );
        if (options.productKey && !(await services.registry.getProduct(options.productKey))) {
          throw new CliError(
            `unknown product ${options.productKey} (\`onramp products list\` shows them).`,
            1,
            "UNKNOWN_PRODUCT",
          );
        }
        const progress = progressBar("importing", scan.dataLines, !options.json);
        try {
          return await importDevices(services, csvRows(file, edgeRejected, options.productKey), {
            ...(options.productKey ? { defaultProductKey: options.productKey } : {}),
            concurrency,
            ...(resume ? { resumeAfterLine: resume.line } : {}),
            onProgress: (done) => progress.update(done + edgeRejected.length),
            onCheckpoint: ({ line, outcome }) =>
              writeCheckpoint(checkpointFile, {
                version: 1,
                sha256: scan.sha256,
                registry,
                ...(options.productKey ? { productKey: options.productKey } : {}),
                line,
                outcome: sumOutcomes(resume?.outcome, outcome),
              }),
          });
        } catch (error) {
          const at = existsSync(checkpointFile) ? readCheckpointFile(checkpointFile)?.line : undefined;
          if (at === undefined || error instanceof CliError) throw error;
          const reason = error instanceof Error ? error.message : String(error);
          throw new CliError(
            `${reason} Every row up to line ${at} is imported; run the same command again to continue after it.`,
            1,
            "IMPORT_INTERRUPTED",
          );
        } finally {
          progress.stop();
        }
      });
      rmSync(checkpointFile, { force: true });
      const earlier = resume?.outcome;
      const total = sumOutcomes(earlier, report);
      report.rows += edgeRejected.length;
      report.rejected = [...edgeRejected, ...report.rejected].sort((a, b) => a.line - b.line);
      const seconds = (Date.now() - started) / 1000;
      if (options.rejected) {
        const lines = report.rejected.map((r) => `${r.line},${r.field},"${r.reason.replaceAll('"', '""')}"`);
        writeFileSync(options.rejected, `line,field,reason\n${lines.join("\n")}\n`);
      }
      const result = {
        ...report,
        ...total,
        ...(resume ? { resumedAfterLine: resume.line } : {}),
        seconds,
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      } else {
        if (resume) process.stdout.write(`resumed after line ${resume.line} (${checkpointFile})\n`);
        process.stdout.write(
          `rows ${report.rows}: written ${total.written}, already present ${total.skippedExisting}, rejected ${report.rejected.length} (${seconds.toFixed(1)} s)\n`,
        );
        if (total.unprocessedRetries + total.throttledRetries > 0) {
          process.stdout.write(
            `  pushed back by DynamoDB and retried: ${total.unprocessedRetries} batches with unprocessed items, ${total.throttledRetries} throttled calls\n`,
          );
        }
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
      .command("migrate")
      .description(
        "Move device rows written before the listing index was sharded to their shard keys (idempotent; listing reads both meanwhile)",
      )
      .option("--product-key <key>", "only this product (default: every product)")
      .option("--json", "print the report as JSON")
      .addHelpText("after", "\nExample:\n  onramp registry migrate --product-key thermo-v2"),
  ).action(async (options: Common & { productKey?: string }) => {
    const report = await withServices(options, async (s) => {
      const products = options.productKey
        ? [await s.registry.getProduct(options.productKey)]
        : await s.registry.listProducts();
      if (products[0] === undefined) {
        throw new CliError(
          `unknown product ${options.productKey} (\`onramp products list\` shows them).`,
          1,
          "UNKNOWN_PRODUCT",
        );
      }
      const out: { productKey: string; moved: number; skipped: number }[] = [];
      for (const product of products) {
        if (!product) continue;
        out.push({
          productKey: product.productKey,
          ...(await s.registry.migrateDeviceKeys(product.productKey)),
        });
      }
      return out;
    });
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ products: report }, null, 2)}\n`);
      return;
    }
    for (const p of report) {
      process.stdout.write(
        `${p.productKey}: moved ${p.moved}${p.skipped ? `, ${p.skipped} moved by another writer` : ""}\n`,
      );
    }
  });

  withTargetOptions(
    registry
      .command("list")
      .description("List the devices of a product")
      .requiredOption("--product-key <key>", "product key")
      .option("--limit <n>", "page size (1-1000), in serial order", "100")
      .option(
        "--cursor <cursor>",
        "continue after a previous page (printed on stderr, or `cursor` under --json)",
      )
      .option(
        "--expiring-within <duration>",
        "only provisioned devices whose certificate expires within this (30d, 12h, 90m); reads each certificate",
      )
      .option("--json", "print JSON"),
  ).action(
    async (
      options: Common & { productKey: string; limit: string; cursor?: string; expiringWithin?: string },
    ) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new CliError("--limit must be a whole number from 1 to 1000", 1, "INVALID_LIMIT");
      }
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
          limit,
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

/**
 * One pass over the file: its SHA-256 (a checkpoint belongs to these exact bytes) and the lines
 * after the header that hold something (the progress bar's total, known before the first row).
 */
async function scanFile(file: string): Promise<{ sha256: string; dataLines: number }> {
  const hash = createHash("sha256");
  let lines = 0;
  let blank = true;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    for (const byte of chunk) {
      if (byte === 0x0a) {
        if (!blank) lines++;
        blank = true;
      } else if (byte !== 0x0d && byte !== 0x20 && byte !== 0x09) blank = false;
    }
  }
  if (!blank) lines++;
  return { sha256: hash.digest("hex"), dataLines: Math.max(0, lines - 1) };
}

const checkpointSchema = z.object({
  version: z.literal(1),
  sha256: z.string(),
  /** The registry table the rows went to ({@link registryIdentity}). */
  registry: z.string(),
  productKey: z.string().optional(),
  line: z.number().int().nonnegative(),
  outcome: z.object({
    written: z.number().int().nonnegative(),
    skippedExisting: z.number().int().nonnegative(),
    unprocessedRetries: z.number().int().nonnegative(),
    throttledRetries: z.number().int().nonnegative(),
  }),
});
type Checkpoint = z.infer<typeof checkpointSchema>;

function readCheckpointFile(path: string): Checkpoint | undefined {
  try {
    const parsed = checkpointSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Which registry table a target writes to: the deployed table by region, or the local stack's. */
function registryIdentity(target: Target): string {
  return target.kind === "aws"
    ? `aws:${target.region}:${target.tableName}`
    : `local:${target.dynamodbEndpoint ?? ""}:${target.tableName}`;
}

/** The checkpoint to resume from, if one exists for this very file, product and table; else none. */
function readCheckpoint(
  path: string,
  expected: { sha256: string; productKey: string | undefined; registry: string },
  quiet: boolean | undefined,
): Checkpoint | undefined {
  if (!existsSync(path)) return undefined;
  const checkpoint = readCheckpointFile(path);
  const usable =
    checkpoint &&
    checkpoint.sha256 === expected.sha256 &&
    checkpoint.productKey === expected.productKey &&
    checkpoint.registry === expected.registry;
  if (!usable && !quiet) {
    process.stderr.write(
      `${path} is for another file, product, registry or version: starting from the first row (existing serials are skipped).\n`,
    );
  }
  return usable ? checkpoint : undefined;
}

/** Written to a temporary file and renamed over the old one: a kill leaves one or the other whole. */
function writeCheckpoint(path: string, checkpoint: Checkpoint): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(checkpoint)}\n`);
  renameSync(temporary, path);
}

function sumOutcomes(a: ImportOutcome | undefined, b: ImportOutcome): ImportOutcome {
  return {
    written: (a?.written ?? 0) + b.written,
    skippedExisting: (a?.skippedExisting ?? 0) + b.skippedExisting,
    unprocessedRetries: (a?.unprocessedRetries ?? 0) + b.unprocessedRetries,
    throttledRetries: (a?.throttledRetries ?? 0) + b.throttledRetries,
  };
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
