#!/usr/bin/env node
// Runs every *.test.ts below the given folders with node's test runner (tsx loads TypeScript).
// Node 20's runner takes no globs, so the files are listed here.
//
// Output: a dot per test on stdout (failures in full at the end), then the run's summary as the
// standard TAP lines (`# tests N`, `# pass N`, `# fail N`, ...), read from the full TAP report the
// runner writes at the same time (kept, and its path printed, when something failed). Pass your
// own --test-reporter=... to get only that.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const roots = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith("--"));
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".test.ts")) files.push(path);
  }
};
for (const root of roots.length ? roots : ["test"]) {
  if (statSync(root).isFile()) files.push(root);
  else walk(root);
}
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const ownReporter = passThrough.some((a) => a.startsWith("--test-reporter"));
const reportDir = ownReporter ? undefined : mkdtempSync(join(tmpdir(), "onramp-tests-"));
const tapFile = reportDir && join(reportDir, "report.tap");
const reporters = tapFile
  ? [
      "--test-reporter=dot",
      "--test-reporter-destination=stdout",
      "--test-reporter=tap",
      `--test-reporter-destination=${tapFile}`,
    ]
  : [];
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", ...reporters, ...passThrough, ...files],
  { stdio: "inherit", env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" } },
);
const status = result.status ?? 1;
if (tapFile) {
  let tap = "";
  try {
    tap = readFileSync(tapFile, "utf8");
  } catch {
    // the runner died before writing it: the exit status says so
  }
  const summary = tap
    .split("\n")
    .filter((line) => /^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /.test(line));
  process.stdout.write(`\n${summary.join("\n")}\n`);
  if (status === 0) rmSync(reportDir, { recursive: true, force: true });
  else process.stdout.write(`# full TAP report: ${tapFile}\n`);
}
process.exit(status);
