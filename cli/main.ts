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

/** The code and message of an error the CLI reports (anything else is a bug: rethrown). */
export function describeCliError(
  error: unknown,
): { code: string; message: string; exitCode: number } | undefined {
  if (error instanceof CliError)
    return { code: error.code, message: error.message, exitCode: error.exitCode };
  if (error instanceof DomainError) return { code: error.code, message: error.message, exitCode: 1 };
  return undefined;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  // Under --json, a script parses stdout: errors come as {"error": {code, message}} there too
  // (the shape of the vending API's errors), and commander's own messages stay off stderr.
  const json = argv.slice(2).includes("--json");
  if (json) program.configureOutput({ writeErr: () => {} });
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (json && error.exitCode !== 0) {
        const message = error.message.replace(/^error: /, "");
        process.stdout.write(`${JSON.stringify({ error: { code: error.code, message } }, null, 2)}\n`);
      }
      process.exitCode = error.exitCode;
      return;
    }
    const described = describeCliError(error);
    if (!described) throw error;
    if (json) {
      const { code, message } = described;
      process.stdout.write(`${JSON.stringify({ error: { code, message } }, null, 2)}\n`);
    } else {
      process.stderr.write(`onramp: ${described.message}\n`);
    }
    process.exitCode = described.exitCode;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv);
}
