/**
 * How every Lambda of this project is bundled, in one place. The CDK construct (through
 * `NodejsFunction`, which runs the esbuild CLI) and `bench/bundles.ts` (through the esbuild API)
 * both derive their options from {@link LAMBDA_BUNDLE}, so the bench measures what is deployed;
 * `test/lib/bundling.test.ts` compares the two outputs byte for byte.
 *
 * This module is imported at synth time: it must not import esbuild (only its types).
 */
import { cpSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Runtime } from "aws-cdk-lib/aws-lambda";
import { type BundlingOptions, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import type { BuildOptions } from "esbuild";

/** The repository root (holds package.json, package-lock.json, lambdas/ and templates/). */
export const PROJECT_ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The lock file NodejsFunction hashes and resolves the project root from. */
export const LOCK_FILE = join(PROJECT_ROOT, "package-lock.json");

/** Where the Lambda entry files live; each `*.ts` there is one Lambda (see {@link lambdaEntrypoints}). */
export const ENTRYPOINTS_DIR = join(PROJECT_ROOT, "lambdas", "entrypoints");

/** Files in {@link ENTRYPOINTS_DIR} that are shared wiring, not Lambda entries. */
export const NON_ENTRY_FILES: readonly string[] = ["lambda-wiring.ts"];

/** The runtime of every Lambda; {@link LAMBDA_BUNDLE}'s `target` must match it. */
export const LAMBDA_RUNTIME = Runtime.NODEJS_22_X;

/**
 * The bundle every Lambda ships.
 *
 * - ESM (`index.mjs`) so top-level await and `import.meta.url` work; the banner defines `require`
 *   for CommonJS dependencies that call it (esbuild's `__require` shim picks it up).
 * - The AWS SDK is bundled, not taken from the runtime: the code runs against the versions in
 *   package-lock.json (the ones the tests ran), and the tree-shaken, minified SDK loads markedly
 *   faster than the runtime's CommonJS copy (measured 1.5-2x). It costs bundle size;
 *   `bench/bundles.ts --sdk=external` measures the other choice.
 * - `mainFields: module, main` so esbuild reads the SDK's ES modules and can tree-shake them.
 * - Source maps without `sourcesContent`: stack traces are mapped (see {@link LAMBDA_NODE_OPTIONS})
 *   while the map stays about a third of the size.
 * - `alias`: the SDK's default credential chain is replaced by the environment provider
 *   (lambdas/adapters/lambda-env-credentials.ts): Lambda always puts the role's credentials there.
 */
export const LAMBDA_BUNDLE = {
  target: "node22",
  platform: "node",
  format: "esm",
  outfile: "index.mjs",
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  mainFields: ["module", "main"],
  external: [] as readonly string[],
  alias: { "@aws-sdk/credential-provider-node": "./lambdas/adapters/lambda-env-credentials.ts" } as Readonly<
    Record<string, string>
  >,
  banner:
    "import { createRequire as __onrampCreateRequire } from 'node:module';" +
    "const require = __onrampCreateRequire(import.meta.url);",
} as const;

/** The AWS SDK packages, for `--sdk=external` comparisons (what NodejsFunction excludes by default). */
export const AWS_SDK_EXTERNALS: readonly string[] = ["@aws-sdk/*", "@smithy/*"];

/**
 * `NODE_OPTIONS` of every Lambda: map stack traces through the shipped source map. It adds a few
 * tens of milliseconds to the cold start (the map is parsed at load); the bench includes it.
 */
export const LAMBDA_NODE_OPTIONS = "--enable-source-maps";

/**
 * Folders copied next to `index.mjs`. `templates/catalog.ts` reads `./provisioning/*.json` and
 * `./policies/*.json` relative to `import.meta.url`; in the ESM bundle that URL is the bundle
 * itself (`file:///var/task/index.mjs`), so the folders must sit beside it.
 */
export const BUNDLED_ASSET_DIRS: readonly { from: string; to: string }[] = [
  { from: "templates/provisioning", to: "provisioning" },
  { from: "templates/policies", to: "policies" },
];

/** Absolute paths of the Lambda entries: `lambdas/entrypoints/*.ts` minus {@link NON_ENTRY_FILES}. */
export function lambdaEntrypoints(): string[] {
  return readdirSync(ENTRYPOINTS_DIR)
    .filter((file) => file.endsWith(".ts") && !NON_ENTRY_FILES.includes(file))
    .sort()
    .map((file) => join(ENTRYPOINTS_DIR, file));
}

/** NodejsFunction `bundling` options (local esbuild, never Docker). */
export function nodejsFunctionBundling(): BundlingOptions {
  return {
    target: LAMBDA_BUNDLE.target,
    format: OutputFormat.ESM,
    minify: LAMBDA_BUNDLE.minify,
    sourceMap: LAMBDA_BUNDLE.sourcemap,
    sourcesContent: LAMBDA_BUNDLE.sourcesContent,
    mainFields: [...LAMBDA_BUNDLE.mainFields],
    externalModules: [...LAMBDA_BUNDLE.external],
    banner: LAMBDA_BUNDLE.banner,
    esbuildArgs: Object.fromEntries(
      Object.entries(LAMBDA_BUNDLE.alias).map(([from, to]) => [`--alias:${from}`, to]),
    ),
    forceDockerBundling: false,
    commandHooks: {
      beforeBundling: () => [],
      beforeInstall: () => [],
      afterBundling: (inputDir, outputDir) => copyAssetCommands(inputDir, outputDir),
    },
  };
}

/**
 * esbuild API options equal to what NodejsFunction passes to the esbuild CLI for the same entry
 * (`--bundle <entry> --target --platform --format --outfile --minify --sourcemap
 * --sources-content=false --external:… --banner:js --main-fields`, run in the project root).
 */
export function esbuildBuildOptions(
  entry: string,
  outdir: string,
  overrides: { external?: readonly string[] } = {},
): BuildOptions {
  return {
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [entry],
    bundle: true,
    target: LAMBDA_BUNDLE.target,
    platform: LAMBDA_BUNDLE.platform,
    format: LAMBDA_BUNDLE.format,
    outfile: join(outdir, LAMBDA_BUNDLE.outfile),
    minify: LAMBDA_BUNDLE.minify,
    sourcemap: LAMBDA_BUNDLE.sourcemap,
    sourcesContent: LAMBDA_BUNDLE.sourcesContent,
    external: [...(overrides.external ?? LAMBDA_BUNDLE.external)],
    banner: { js: LAMBDA_BUNDLE.banner },
    mainFields: [...LAMBDA_BUNDLE.mainFields],
    alias: { ...LAMBDA_BUNDLE.alias },
    logLevel: "warning",
  };
}

/** Copies {@link BUNDLED_ASSET_DIRS} into a bundle's output folder (the bench's afterBundling). */
export function copyBundledAssets(outdir: string, projectRoot: string = PROJECT_ROOT): void {
  for (const { from, to } of BUNDLED_ASSET_DIRS) {
    cpSync(join(projectRoot, from), join(outdir, to), { recursive: true });
  }
}

/**
 * The afterBundling shell commands: one `node -e` copy per folder, so they run the same under
 * bash and cmd (NodejsFunction runs hook commands through the platform shell).
 */
function copyAssetCommands(inputDir: string, outputDir: string): string[] {
  const script = "require('node:fs').cpSync(process.argv[1], process.argv[2], { recursive: true })";
  return BUNDLED_ASSET_DIRS.map(
    ({ from, to }) => `node -e "${script}" "${join(inputDir, from)}" "${join(outputDir, to)}"`,
  );
}
