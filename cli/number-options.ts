import { CliError } from "./cli-error.ts";

/** Reads a number-of-seconds option within bounds (fractions allowed); throws CliError naming the flag. */
export function seconds(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new CliError(`${flag} must be a number of seconds from ${min} to ${max}`);
  return n;
}

/** Reads a whole-number option within bounds; throws CliError naming the flag. */
export function whole(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new CliError(`${flag} must be a whole number from ${min} to ${max}`);
  return n;
}
