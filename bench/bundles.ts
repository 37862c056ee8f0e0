/**
 * Bundle-size and cold-load benchmark of every Lambda entry (`npm run bench:bundles`).
 *
 * Each entry in lambdas/entrypoints (except the shared wiring) is bundled with the esbuild API and
 * the options of lib/bundling.ts, the ones the CDK construct passes to the esbuild CLI, plus the
 * same template folders copied next to the bundle. Then, for each bundle, a fresh `node` process
 * imports it (Lambda's NODE_OPTIONS, dummy values for the settings the wiring requires) and reports
 * how long the import took: one warm-up run that is not counted, then 9 rounds.
 *
 * Load times are judged as a ratio to a reference bundle loaded in the same rounds: on a busy
 * machine every cold load slows down alike (64-71 ms recorded quietly, 160-245 ms under load),
 * and an absolute budget then fails for reasons that are not ours. The reference is a Lambda of
 * our shape that is not ours: a module that constructs a DynamoDBClient (@aws-sdk/client-dynamodb)
 * at load, bundled with the same options. It loads the SDK core (smithy client, middleware stack,
 * credential and region resolution) that is most of each of our bundles, so it scales with load as
 * they do; a trivial module would measure only node's fixed import cost (a few ms, so the ratio
 * would be mostly noise), and the smallest of our bundles would move with our own code (a change
 * that made every bundle slower would not show). Each round loads the reference and then every
 * entry, one after another; an entry's ratio is the median of its per-round ratios (paired, so a
 * burst of load hits both sides of one ratio).
 *
 * Budget: 500 KB minified; load at most 2.5x the reference. Our bundles (2.4x the reference's
 * size) load at 1.4-1.8x it (BENCHMARKS.md); issue 5's 150 ms was ~2.1x our 64-71 ms quiet loads,
 * and 2.5x keeps about that headroom while still failing a bundle whose load doubles. Exit code 1
 * when an entry is over budget. `--sdk=external` measures the alternative of taking the AWS SDK from the runtime.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import {
  AWS_SDK_EXTERNALS,
  copyBundledAssets,
  esbuildBuildOptions,
  LAMBDA_BUNDLE,
  LAMBDA_NODE_OPTIONS,
  lambdaEntrypoints,
  PROJECT_ROOT,
} from "#lib/bundling.ts";
import { LAMBDA_SETTING_NAMES } from "#lib/lambda-settings.ts";

const BUDGET_KB = 500;
/** Load budget, as a multiple of the reference bundle's load time in the same rounds. */
const BUDGET_RATIO = 2.5;
const RUNS = 9;
/** The reference Lambda: the AWS SDK core, constructed at load as our wiring does. */
const REFERENCE_SOURCE =
  'import { DynamoDBClient } from "@aws-sdk/client-dynamodb";\n' +
  "const client = new DynamoDBClient({});\n" +
  "export const handler = async () => client.config.serviceId;\n";
// Inside the project, so that `--sdk=external` bundles resolve the SDK from node_modules.
const OUT_ROOT = join(PROJECT_ROOT, ".tmp", "bench-bundles");

const externalSdk = process.argv.includes("--sdk=external");

/** Imports the bundle given as argv[1] and prints how many milliseconds the import took. */
const LOAD_SCRIPT =
  "const t0 = performance.now(); await import(process.argv[1]); " +
  "process.stdout.write(String(performance.now() - t0));";

type Bundle = { name: string; path: string; kb: number; gzipKb: number };
type Result = Bundle & { runs: number[]; medianMs: number; ratio: number };

async function main(): Promise<void> {
  rmSync(OUT_ROOT, { recursive: true, force: true });
  const overrides = externalSdk ? { external: AWS_SDK_EXTERNALS } : {};
  const referenceEntry = join(OUT_ROOT, "reference-entry.ts");
  mkdirSync(OUT_ROOT, { recursive: true });
  writeFileSync(referenceEntry, REFERENCE_SOURCE);
  const reference = await bundle("reference", referenceEntry, overrides);
  const bundles: Bundle[] = [];
  for (const entry of lambdaEntrypoints())
    bundles.push(await bundle(basename(entry, ".ts"), entry, overrides));

  for (const b of [reference, ...bundles]) measureLoad(b.path); // warm-up: file cache, not counted
  const runs = new Map<string, number[]>([reference, ...bundles].map((b) => [b.name, []]));
  const ratios = new Map<string, number[]>(bundles.map((b) => [b.name, []]));
  for (let round = 0; round < RUNS; round++) {
    const referenceMs = measureLoad(reference.path);
    runs.get(reference.name)!.push(referenceMs);
    for (const b of bundles) {
      const ms = measureLoad(b.path);
      runs.get(b.name)!.push(ms);
      ratios.get(b.name)!.push(ms / referenceMs);
    }
  }
  const result = (b: Bundle, ratio: number): Result => {
    const r = runs.get(b.name)!;
    return { ...b, runs: r, medianMs: median(r), ratio };
  };
  const results = [result(reference, 1), ...bundles.map((b) => result(b, median(ratios.get(b.name)!)))];
  report(results);
  if (results.slice(1).some((r) => !withinBudget(r))) process.exitCode = 1;
}

async function bundle(
  name: string,
  entry: string,
  overrides: { external?: readonly string[] },
): Promise<Bundle> {
  const outdir = join(OUT_ROOT, name);
  await build(esbuildBuildOptions(entry, outdir, overrides));
  copyBundledAssets(outdir);
  const path = join(outdir, LAMBDA_BUNDLE.outfile);
  const kb = statSync(path).size / 1024;
  const gzipKb = gzipSync(readFileSync(path)).length / 1024;
  return { name, path, kb, gzipKb };
}

function measureLoad(bundle: string): number {
  const dummies = Object.fromEntries(
    LAMBDA_SETTING_NAMES.map((name) => [name, `bench-${name.toLowerCase()}`]),
  );
  const child = spawnSync(
    process.execPath,
    ["--input-type=module", "-e", LOAD_SCRIPT, pathToFileURL(bundle).href],
    {
      cwd: PROJECT_ROOT,
      encoding: "utf8",
      env: {
        PATH: process.env.PATH ?? "",
        NODE_OPTIONS: LAMBDA_NODE_OPTIONS,
        AWS_REGION: "us-east-1",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        ...dummies,
      },
    },
  );
  const ms = Number(child.stdout);
  if (child.status !== 0 || !Number.isFinite(ms)) {
    throw new Error(`loading ${bundle} failed (exit ${child.status}):\n${child.stderr}`);
  }
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function withinBudget(r: Result): boolean {
  return r.kb <= BUDGET_KB && r.ratio <= BUDGET_RATIO;
}

function report(results: Result[]): void {
  console.log(
    `Lambda bundles (${externalSdk ? "AWS SDK external" : "AWS SDK bundled"}, node ${process.versions.node}, ` +
      `NODE_OPTIONS=${LAMBDA_NODE_OPTIONS}); budget ${BUDGET_KB} KB / ${BUDGET_RATIO}x the reference's load\n`,
  );
  const rows = results.map((r, i) => [
    i === 0 ? `(reference: DynamoDBClient)` : r.name,
    `${r.kb.toFixed(1)} KB`,
    `${r.gzipKb.toFixed(1)} KB`,
    i === 0 ? "1.00" : r.ratio.toFixed(2),
    `${r.medianMs.toFixed(1)} ms`,
    r.runs.map((ms) => ms.toFixed(0)).join(" "),
    i === 0 ? "" : `${r.kb <= BUDGET_KB ? "pass" : "FAIL"} / ${r.ratio <= BUDGET_RATIO ? "pass" : "FAIL"}`,
  ]);
  const header = [
    "entry",
    "minified",
    "gzip",
    "load ÷ reference",
    "load (median)",
    `runs (ms, n=${RUNS})`,
    "size / load",
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  "));
}

await main();
