import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { PROJECT_ROOT, runBin } from "#test/support/spawned-stack.ts";

const built = join(PROJECT_ROOT, "dist/cli/onramp.mjs");
const manifest = () =>
  JSON.parse(readFileSync(`${built}.inputs.json`, "utf8")) as { builtAt: number; inputs: string[] };

/**
 * `onramp` runs the CLI built by scripts/build-cli.mjs (no TypeScript compiled per call), and a
 * build older than one of its sources is rebuilt before it runs.
 */
describe("the onramp binary runs the built CLI", () => {
  it("the built file is plain JavaScript: it runs with no TypeScript loader", () => {
    assert.equal(runBin(["--help"]).code, 0); // builds it if missing or stale
    const result = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { main } = await import(${JSON.stringify(built)}); await main(["node", "onramp", "template", "list"]);`,
      ],
      { cwd: PROJECT_ROOT, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } },
    );
    assert.equal(result.status, 0, result.stderr);
    // templates/ is found from the bundle (each source keeps its own import.meta.url).
    assert.match(result.stdout, /cvm-device\s+SerialNumber, ProductKey, CertificateId/);
  });

  it("records the project files it was built from, the CLI's entry and templates' catalog among them", () => {
    const { inputs } = manifest();
    for (const file of ["cli/main.ts", "cli/wiring.ts", "templates/catalog.ts", "package.json"]) {
      assert.ok(inputs.includes(file), `${file} in ${inputs.join(", ")}`);
    }
    assert.ok(!inputs.some((f) => f.includes("node_modules")));
  });

  it("rebuilds when a source is newer than the build, then runs the new build", () => {
    const source = join(PROJECT_ROOT, "cli/output.ts");
    const before = manifest().builtAt;
    const { atime } = statSync(source);
    const later = new Date(Math.max(Date.now(), before + 10));
    utimesSync(source, atime, later);
    const run = runBin(["template", "list"]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(manifest().builtAt > before, "rebuilt");
    assert.ok(statSync(built).mtimeMs >= before);
  });

  it("npm start runs the built stack too (dist/local/main.mjs)", () => {
    const result = spawnSync(process.execPath, [join(PROJECT_ROOT, "scripts/start-local.mjs"), "--help"], {
      cwd: PROJECT_ROOT,
      encoding: "utf8",
    });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Usage: npm start/);
    const inputs = JSON.parse(readFileSync(join(PROJECT_ROOT, "dist/local/main.mjs.inputs.json"), "utf8"))
      .inputs as string[];
    assert.ok(inputs.includes("local/main.ts"));
  });
});
