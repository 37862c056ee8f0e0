import { DomainError } from "./errors.ts";

/** An error as a log field: the domain code or the error's class name, never its message or data. */
export function describeError(error: unknown): string {
  if (error instanceof DomainError) return `${error.name}: ${error.code}`;
  return error instanceof Error ? error.name : "unknown";
}
