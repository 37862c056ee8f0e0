import { Command, CommanderError } from "commander";
import { DomainError } from "#core/errors.ts";
import { CliError } from "./cli-error.ts";
import { registerCommands } from "./commands/index.ts";

export function buildProgram(): Command {
  const program = new Command("onramp")
    .description(
      "iot-onramp operator and device tooling: credentials, registry, CAs, certificates, templates",
    )
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof CliError) {
      process.stderr.write(`onramp: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof DomainError) {
      process.stderr.write(`onramp: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv);
}
