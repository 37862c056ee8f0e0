import { buildProgram } from "#cli/main.ts";

export type CliRun = { stdout: string; exitCode: number; error?: unknown };

/**
 * Runs `onramp ...args` in-process, as the `onramp` binary would, and returns what it printed to
 * stdout (stderr is swallowed), its exit code and what it threw. Only strings are captured: the
 * test runner reports over stdout in Buffers, which pass through untouched.
 */
export async function runOnramp(...args: string[]): Promise<CliRun> {
  const program = buildProgram().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  let stdout = "";
  const out = process.stdout.write;
  const err = process.stderr.write;
  const capture = (original: typeof out, sink: (text: string) => void) =>
    ((chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== "string")
        return (original as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
      sink(chunk);
      return true;
    }) as typeof out;
  process.stdout.write = capture(out, (text) => {
    stdout += text;
  });
  process.stderr.write = capture(err, () => {});
  const exitBefore = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(args, { from: "user" });
    return { stdout, exitCode: Number(process.exitCode ?? 0) };
  } catch (error) {
    return { stdout, exitCode: Number(process.exitCode || 1), error };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = exitBefore;
  }
}

/** Like runOnramp, but rethrows what the command threw. */
export async function onramp(...args: string[]): Promise<CliRun> {
  const run = await runOnramp(...args);
  if (run.error !== undefined) throw run.error;
  return run;
}
