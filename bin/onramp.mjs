#!/usr/bin/env node
// The `onramp` command: runs the CLI built into dist/cli/onramp.mjs (`npm ci` builds it; it is
// rebuilt here when a source file changed since), so no TypeScript is compiled per call.
import { loadBuilt } from "../scripts/run-built.mjs";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const { main } = await loadBuilt("cli");
await main(process.argv);
