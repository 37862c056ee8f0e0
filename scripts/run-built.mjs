// Loads a file built by scripts/build-cli.mjs, rebuilding it first when it is missing or older
// than one of the project files it was built from (a checkout, an edit); without esbuild
// (installed without dev tools) it loads the TypeScript source through tsx instead.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** True when `outfile` exists and no input named in its `.inputs.json` changed after the build. */
function isFresh(outfile) {
  try {
    const { builtAt, inputs } = JSON.parse(readFileSync(`${outfile}.inputs.json`, "utf8"));
    if (!existsSync(outfile)) return false;
    for (const input of inputs) {
      const path = join(root, input);
      if (!existsSync(path)) return false;
      if (statSync(path).mtimeMs > builtAt) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * The module of a build target (`cli` or `local`, see scripts/build-cli.mjs): the built file when
 * fresh, rebuilt when stale, or the TypeScript source through tsx when esbuild is not installed.
 */
export async function loadBuilt(name) {
  const { TARGETS, buildTarget } = await import("./build-cli.mjs");
  const target = TARGETS[name];
  const outfile = join(root, target.outfile);
  if (!isFresh(outfile)) {
    const esbuild = await import("esbuild").then(
      (m) => m.default,
      () => undefined,
    );
    if (!esbuild) {
      const { register } = await import("tsx/esm/api");
      register();
      return import(pathToFileURL(join(root, target.entry)).href);
    }
    await buildTarget(esbuild, name);
  }
  return import(pathToFileURL(outfile).href);
}
