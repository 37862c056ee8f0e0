#!/usr/bin/env node
// Builds the `onramp` CLI (cli/main.ts) and the local stack's entry (local/main.ts) into single
// ES-module files under dist/, so a command starts without compiling TypeScript (tsx costs
// 0.6-2 s per call). Runs on `npm ci` (the `prepare` script); bin/onramp.mjs and `npm start`
// rebuild on their own when a source file is newer than the build (see build-manifest.mjs).
//
// Usage: node scripts/build-cli.mjs [cli|local]...   (both when none is named)
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** What each target builds: entry, output file (both relative to the project root). */
export const TARGETS = {
  cli: { entry: "cli/main.ts", outfile: "dist/cli/onramp.mjs" },
  local: { entry: "local/main.ts", outfile: "dist/local/main.mjs" },
};

/**
 * Source files find their neighbours through `import.meta.url` (templates/, openapi.yaml, the
 * dynalite child process). In a bundle that URL would be the bundle's; this plugin gives each
 * project file its own URL back, relative to the bundle so the checkout can move.
 */
function ownImportMetaUrl(outdir) {
  return {
    name: "own-import-meta-url",
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (args.path.includes(`${join("node_modules", "")}`)) return undefined;
        const source = await readFile(args.path, "utf8");
        if (!source.includes("import.meta.url")) return { contents: source, loader: "ts" };
        const fromBundle = relative(outdir, args.path).split("\\").join("/");
        return {
          contents: source.replaceAll(
            "import.meta.url",
            `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`,
          ),
          loader: "ts",
        };
      });
    },
  };
}

/** Builds one target; writes `<outfile>.inputs.json` (the project files it was built from). */
export async function buildTarget(esbuild, name) {
  const target = TARGETS[name];
  const outfile = join(root, target.outfile);
  const outdir = dirname(outfile);
  mkdirSync(outdir, { recursive: true });
  // Build next to the final file, then rename: a CLI call running meanwhile reads a whole file.
  const temporary = `${outfile}.${process.pid}.tmp.mjs`;
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [join(root, target.entry)],
    outfile: temporary,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    mainFields: ["module", "main"],
    // The local stack runs dynalite in its own process from its own file (local/dynalite-process.mjs).
    external: ["dynalite"],
    banner: {
      js:
        "import { createRequire as __onrampCreateRequire } from 'node:module';" +
        "const require = __onrampCreateRequire(import.meta.url);",
    },
    plugins: [ownImportMetaUrl(outdir)],
    metafile: true,
    logLevel: "warning",
    legalComments: "none",
  });
  renameSync(temporary, outfile);
  const inputs = Object.keys(result.metafile.inputs)
    .filter((path) => !path.includes("node_modules/") && !path.startsWith("<"))
    .sort();
  writeFileSync(
    `${outfile}.inputs.json`,
    `${JSON.stringify({ builtAt: Date.now(), inputs: [...inputs, "package.json", "package-lock.json"] }, null, 1)}\n`,
  );
  return outfile;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const names = process.argv.slice(2);
  const { default: esbuild } = await import("esbuild").catch(() => ({ default: undefined }));
  if (!esbuild) process.exit(0); // installed without dev tools: bin/onramp.mjs runs the sources with tsx
  if (!existsSync(join(root, TARGETS.cli.entry))) process.exit(0);
  for (const name of names.length ? names : Object.keys(TARGETS)) await buildTarget(esbuild, name);
}
