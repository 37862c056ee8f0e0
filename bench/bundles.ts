/**
 * Bundle-size and cold-load benchmark of every Lambda entry (`npm run bench:bundles`).
 *
 * Each entry in lambdas/entrypoints (except the shared wiring) is bundled with the esbuild API and
 * the options of lib/bundling.ts, the ones the CDK construct passes to the esbuild CLI, plus the
 * same template folders copied next to the bundle. Then, for each bundle, a fresh `node` process
 * imports it (Lambda's NODE_OPTIONS, dummy values for the settings the wiring requires) and reports
 * how long the import took: one warm-up run that is not counted, then 5 runs, median.
 *
 * Budget: 500 KB minified, 150 ms cold load. Exit code 1 when an entry is over budget.
 * `--sdk=external` measures the alternative of taking the AWS SDK from the runtime.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, statSync } from "node:fs";
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
const BUDGET_MS = 150;
const RUNS = 5;
// Inside the project, so that `--sdk=external` bundles resolve the SDK from node_modules.
const OUT_ROOT = join(PROJECT_ROOT, ".tmp", "bench-bundles");

const externalSdk = process.argv.includes("--sdk=external");

/** Imports the bundle given as argv[1] and prints how many milliseconds the import took. */
const LOAD_SCRIPT =
  "const t0 = performance.now(); await import(process.argv[1]); " +
  "process.stdout.write(String(performance.now() - t0));";

type Result = { name: string; kb: number; gzipKb: number; runs: number[]; medianMs: number };

async function main(): Promise<void> {
  rmSync(OUT_ROOT, { recursive: true, force: true });
  const results: Result[] = [];
  for (const entry of lambdaEntrypoints()) {
    const name = basename(entry, ".ts");
    const outdir = join(OUT_ROOT, name);
    await build(esbuildBuildOptions(entry, outdir, externalSdk ? { external: AWS_SDK_EXTERNALS } : {}));
    copyBundledAssets(outdir);
    const bundle = join(outdir, LAMBDA_BUNDLE.outfile);
    const bytes = statSync(bundle).size;
    const gzipBytes = gzipSync(readFileSync(bundle)).length;
    measureLoad(bundle); // warm-up: file cache, not counted
    const runs = Array.from({ length: RUNS }, () => measureLoad(bundle));
    results.push({ name, kb: bytes / 1024, gzipKb: gzipBytes / 1024, runs, medianMs: median(runs) });
  }
  report(results);
  if (results.some((r) => !withinBudget(r))) process.exitCode = 1;
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
  return r.kb <= BUDGET_KB && r.medianMs <= BUDGET_MS;
}

function report(results: Result[]): void {
  console.log(
    `Lambda bundles (${externalSdk ? "AWS SDK external" : "AWS SDK bundled"}, node ${process.versions.node}, ` +
      `NODE_OPTIONS=${LAMBDA_NODE_OPTIONS}); budget ${BUDGET_KB} KB / ${BUDGET_MS} ms\n`,
  );
  const rows = results.map((r) => [
    r.name,
    `${r.kb.toFixed(1)} KB`,
    `${r.gzipKb.toFixed(1)} KB`,
    `${r.medianMs.toFixed(1)} ms`,
    r.runs.map((ms) => ms.toFixed(0)).join(" "),
    `${r.kb <= BUDGET_KB ? "pass" : "FAIL"} / ${r.medianMs <= BUDGET_MS ? "pass" : "FAIL"}`,
  ]);
  const header = ["entry", "minified", "gzip", "load (median)", `runs (ms, n=${RUNS})`, "size / load"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  "));
}

await main();
