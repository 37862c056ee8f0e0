#!/usr/bin/env node
// The `onramp` command: loads the TypeScript CLI through tsx, so no build step is needed.
import { register } from "tsx/esm/api";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
register();
const { main } = await import("../cli/main.ts");
await main(process.argv);
