#!/usr/bin/env node
// CLI start-up: wall time of whole `onramp` processes, as a user waits for them.
//   built       node bin/onramp.mjs ...        (dist/cli/onramp.mjs, what `npx onramp` runs now)
//   tsx         node --import tsx cli/main.ts  (what bin/onramp.mjs ran before: TypeScript
//               compiled at start-up; tsx's cache warm, and with TSX_DISABLE_CACHE=1 as on a
//               first run or after an edit)
//   npx         npx onramp --help, and npx of an empty bin (what npx itself costs)
// Usage: node bench/cli-startup.mjs [runs]   (median and min of `runs` runs, default 10)
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const runs = Number(process.argv[2] ?? 10);
const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

// an empty package with one bin, to measure npx alone
const empty = mkdtempSync(join(tmpdir(), "onramp-npx-"));
writeFileSync(
  join(empty, "package.json"),
  '{"name":"empty-bin","version":"1.0.0","bin":{"nothing":"n.mjs"}}',
);
writeFileSync(join(empty, "n.mjs"), "#!/usr/bin/env node\n");
chmodSync(join(empty, "n.mjs"), 0o755);
mkdirSync(join(empty, "node_modules", ".bin"), { recursive: true });
symlinkSync("../../n.mjs", join(empty, "node_modules", ".bin", "nothing"));

const cases = [
  ["built: onramp --help", process.execPath, ["bin/onramp.mjs", "--help"], {}],
  ["built: onramp template list", process.execPath, ["bin/onramp.mjs", "template", "list"], {}],
  ["tsx, cache warm: onramp --help", process.execPath, ["--import", "tsx", "cli/main.ts", "--help"], {}],
  [
    "tsx, no cache: onramp --help",
    process.execPath,
    ["--import", "tsx", "cli/main.ts", "--help"],
    { TSX_DISABLE_CACHE: "1" },
  ],
  ["npx onramp --help (built)", "npx", ["onramp", "--help"], {}],
  ["npx of an empty bin", "npx", ["nothing"], {}, empty],
  ["node, empty script", process.execPath, ["-e", ""], {}],
];

spawnSync(process.execPath, ["bin/onramp.mjs", "--help"], { cwd: root, env }); // build if stale
console.log(`| command | median s | min s |\n|---|---:|---:|`);
for (const [name, command, args, extraEnv, cwd] of cases) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    const result = spawnSync(command, args, {
      cwd: cwd ?? root,
      env: { ...env, ...extraEnv },
      stdio: "ignore",
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (result.status !== 0) throw new Error(`${name}: exit ${result.status}`);
    times.push(seconds);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(`| ${name} | ${median.toFixed(2)} | ${times[0].toFixed(2)} |`);
}
rmSync(empty, { recursive: true, force: true });
