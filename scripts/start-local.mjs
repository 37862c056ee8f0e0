#!/usr/bin/env node
// `npm start`: runs the local stack built into dist/local/main.mjs (rebuilt when a source changed).
import { loadBuilt } from "./run-built.mjs";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
await loadBuilt("local");
