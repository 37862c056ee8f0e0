import type { Logger } from "#core/logger.ts";

/** One log call: level, message and the structured fields. */
export type LogEntry = { level: string; message: string } & Record<string, unknown>;

/** A logger that keeps every entry, to check decisions and that no key material is logged. */
export function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      entries.push({ level, message, ...Object.assign({}, ...extra) });
    };
  return { entries, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** True when any log entry carries PEM or key material. */
export function logsCarryKeyMaterial(entries: readonly LogEntry[]): boolean {
  return entries.some((entry) => /-----BEGIN|PRIVATE KEY|MII[A-Za-z0-9+/]{20}/.test(JSON.stringify(entry)));
}
