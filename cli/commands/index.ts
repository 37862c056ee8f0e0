import type { Command } from "commander";
import { registerBulkCommands } from "./bulk.ts";
import { registerCaCommands } from "./ca.ts";
import { registerCredsCommands } from "./creds.ts";
import { registerDeviceCommands } from "./device.ts";
import { registerFleetCommands } from "./fleet.ts";
import { registerPhoneCommands } from "./phone.ts";
import { registerProductsCommands } from "./products.ts";
import { registerRegistryCommands } from "./registry.ts";
import { registerStatusCommand } from "./status.ts";
import { registerTemplateCommands } from "./template.ts";
import { registerUsersCommands } from "./users.ts";

/**
 * Every command group registers itself here: one line per group, each group in its own file.
 * Keep this list sorted.
 */
export function registerCommands(program: Command): void {
  registerBulkCommands(program);
  registerCaCommands(program);
  registerCredsCommands(program);
  registerDeviceCommands(program);
  registerFleetCommands(program);
  registerPhoneCommands(program);
  registerProductsCommands(program);
  registerRegistryCommands(program);
  registerStatusCommand(program);
  registerTemplateCommands(program);
  registerUsersCommands(program);
}
