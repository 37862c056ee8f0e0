/** An error the CLI reports as one line on stderr (or `{"error": ...}` under --json), with an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** A stable code for scripts (`--json` prints it). */
    readonly code = "CLI_ERROR",
  ) {
    super(message);
    this.name = "CliError";
  }
}
