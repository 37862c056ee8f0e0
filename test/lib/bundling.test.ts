import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import {
  BUNDLED_ASSET_DIRS,
  copyBundledAssets,
  ENTRYPOINTS_DIR,
  esbuildBuildOptions,
  LAMBDA_BUNDLE,
  LAMBDA_NODE_OPTIONS,
  LAMBDA_RUNTIME,
  lambdaEntrypoints,
  PROJECT_ROOT,
} from "#lib/bundling.ts";
import { LAMBDA_SETTING_NAMES } from "#lib/lambda-settings.ts";
import {
  AUTHORIZER_POLICY_DOCUMENTS,
  listPolicyDocuments,
  listProvisioningTemplates,
  loadPolicyDocument,
} from "#templates/catalog.ts";
import { bundledApp, resourceAt } from "./app-fixture.ts";

/** A function's asset folder in the synthesized (bundled) cloud assembly (default: the vend function). */
function vendAssetDir(functionAt = "VendFunction"): string {
  const { assembly, provisioningTemplate } = bundledApp();
  const fn = resourceAt(provisioningTemplate, "AWS::Lambda::Function", functionAt);
  const assetPath = fn.Metadata?.["aws:asset:path"];
  assert.ok(typeof assetPath === "string", "asset metadata is enabled in the bundled fixture");
  return join(assembly.directory, assetPath);
}

/** Every deployed Lambda: its entry file and the construct path of its function. */
const DEPLOYED_FUNCTIONS: [entry: string, functionAt: string][] = [
  ["vend-certificate.ts", "VendFunction"],
  ["jitr-registration.ts", "JitrFunction"],
  ["pre-provisioning-hook.ts", "FleetHookFunction"],
  ["fleet-commit.ts", "FleetCommitFunction"],
  ["certificate-rotation.ts", "CertificateRotationFunction"],
  ["custom-authorizer.ts", "SecretDeviceAuthorizerFunction"],
  ["register-device.ts", "RegisterDeviceFunction"],
  ["binding-report.ts", "BindingReportFunction"],
  ["binding-api.ts", "PhoneApiHandlerFunction"],
];

describe("lib/bundling: the deployed bundle", () => {
  it("is index.mjs + source map, with the template folders next to it", () => {
    const dir = vendAssetDir();
    assert.deepEqual(readdirSync(dir).sort(), ["index.mjs", "index.mjs.map", "policies", "provisioning"]);
    const names = (folder: string) =>
      readdirSync(join(dir, folder))
        .map((f) => f.replace(/\.json$/, ""))
        .sort();
    assert.deepEqual(names("provisioning"), listProvisioningTemplates());
    assert.deepEqual(names("policies"), listPolicyDocuments());
    assert.deepEqual(
      BUNDLED_ASSET_DIRS.map((d) => d.to),
      ["provisioning", "policies"],
    );
  });

  it("is an ES module that resolves the folders from import.meta.url (the bundle itself)", () => {
    const code = readFileSync(join(vendAssetDir(), "index.mjs"), "utf8");
    assert.equal(code.slice(0, LAMBDA_BUNDLE.banner.length), LAMBDA_BUNDLE.banner);
    // The vend path loads provisioning templates only (the policies reader is tree-shaken away).
    assert.ok(code.includes('"./provisioning/",import.meta.url'), "catalog URL kept relative to the bundle");
  });

  for (const [entry, functionAt] of DEPLOYED_FUNCTIONS) {
    it(`${entry}: is byte for byte what the bench builds with the shared esbuild options`, async () => {
      const outdir = mkdtempSync(join(tmpdir(), "onramp-bench-"));
      await build({ ...esbuildBuildOptions(join(ENTRYPOINTS_DIR, entry), outdir), logLevel: "error" });
      const deployed = readFileSync(join(vendAssetDir(functionAt), LAMBDA_BUNDLE.outfile));
      const benched = readFileSync(join(outdir, LAMBDA_BUNDLE.outfile));
      assert.equal(benched.length, deployed.length);
      assert.ok(benched.equals(deployed), "bench and construct bundles differ: lib/bundling.ts drifted");
    });

    it(`${entry}: loads in a fresh node with only the settings its construct sets (as in Lambda)`, () => {
      const bundle = pathToFileURL(join(vendAssetDir(functionAt), LAMBDA_BUNDLE.outfile)).href;
      const fn = resourceAt(bundledApp().provisioningTemplate, "AWS::Lambda::Function", functionAt);
      const settings = Object.keys(fn.Properties.Environment.Variables as Record<string, unknown>).filter(
        (n) => LAMBDA_SETTING_NAMES.includes(n),
      );
      assert.ok(settings.length > 0);
      const env = Object.fromEntries(settings.map((n) => [n, "test"]));
      const child = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          "const m = await import(process.argv[1]); console.log(typeof m.handler);",
          bundle,
        ],
        {
          encoding: "utf8",
          env: {
            PATH: process.env.PATH ?? "",
            NODE_OPTIONS: LAMBDA_NODE_OPTIONS,
            AWS_REGION: "eu-west-1",
            ...env,
          },
        },
      );
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout.trim(), "function");
    });
  }
});

describe("lib/bundling: the custom authorizer's policy documents", () => {
  it("ships templates/policies/secret-*.json beside the bundle, which the entry loads at start", () => {
    const entry = readFileSync(join(ENTRYPOINTS_DIR, "custom-authorizer.ts"), "utf8");
    assert.match(entry, /loadPolicyDocument\(AUTHORIZER_POLICY_DOCUMENTS\.device\)/);
    assert.match(entry, /loadPolicyDocument\(AUTHORIZER_POLICY_DOCUMENTS\.activation\)/);
    const dir = join(vendAssetDir("SecretDeviceAuthorizerFunction"), "policies");
    for (const name of Object.values(AUTHORIZER_POLICY_DOCUMENTS)) {
      const copied = readFileSync(join(dir, `${name}.json`), "utf8");
      assert.equal(copied, readFileSync(join(PROJECT_ROOT, "templates", "policies", `${name}.json`), "utf8"));
    }
  });
});

describe("lib/bundling: shared options", () => {
  it("targets the Lambda runtime's Node.js version", () => {
    assert.equal(LAMBDA_RUNTIME.name, `nodejs${LAMBDA_BUNDLE.target.replace("node", "")}.x`);
  });

  it("lists every entry of lambdas/entrypoints but the shared wiring, each deployed", () => {
    const entries = lambdaEntrypoints().map((p) => p.slice(ENTRYPOINTS_DIR.length + 1));
    assert.deepEqual(entries, DEPLOYED_FUNCTIONS.map(([entry]) => entry).sort());
    assert.ok(!entries.includes("lambda-wiring.ts"));
  });

  it("an ESM bundle of the catalog reads the copied folders through import.meta.url", async () => {
    const outdir = mkdtempSync(join(tmpdir(), "onramp-catalog-"));
    const options = esbuildBuildOptions("unused", outdir);
    await build({
      ...options,
      entryPoints: undefined,
      stdin: {
        contents: 'export { listProvisioningTemplates, loadPolicyDocument } from "#templates/catalog.ts";',
        resolveDir: PROJECT_ROOT,
        loader: "ts",
      },
      logLevel: "error",
    });
    copyBundledAssets(outdir);
    const probe = await import(pathToFileURL(join(outdir, LAMBDA_BUNDLE.outfile)).href);
    assert.deepEqual(probe.listProvisioningTemplates(), listProvisioningTemplates());
    assert.equal(probe.loadPolicyDocument("device-policy"), loadPolicyDocument("device-policy"));
  });
});
