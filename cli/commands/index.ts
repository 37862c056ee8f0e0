import type { Command } from "commander";

/**
 * Every command group registers itself here: one line per group, each group in its own file
 * (`creds.ts`, `registry.ts`, ...). Keep this list sorted.
 */
export function registerCommands(_program: Command): void {}
