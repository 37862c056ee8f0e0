#!/usr/bin/env node
// Builds dist/credentials.js, the plain-JavaScript form of lambdas/credentials for device-side
// Node code that imports `iot-onramp/credentials`. Runs on `npm ci` (the `prepare` script).
import { existsSync } from "node:fs";

const entry = "lambdas/credentials/index.ts";
if (!existsSync(entry)) process.exit(0);
const { build } = await import("esbuild").catch(() => ({ build: undefined }));
if (!build) process.exit(0); // installed as a dependency without dev tools: the source ships instead
await build({
  entryPoints: [entry],
  outfile: "dist/credentials.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
});
