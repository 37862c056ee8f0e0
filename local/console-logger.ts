import type { Logger } from "#core/logger.ts";

const colors = { debug: "\x1b[90m", info: "\x1b[36m", warn: "\x1b[33m", error: "\x1b[31m" } as const;

/** Options of consoleLogger. */
export type ConsoleLoggerOptions = {
  level?: keyof typeof colors;
  /** Color the level tag (default: when stderr is a terminal). */
  color?: boolean;
  /** Where each line goes, newline included (default: stderr). */
  write?: (line: string) => void;
};

/**
 * Readable one-line logs for the local stack (structured keys after the message). Messages and
 * fields often carry what devices sent (client ids, topics), so one call is always one line:
 * control characters (C0, DEL, C1), the Unicode line and paragraph separators and the bidi
 * controls are written as escapes (`\n`, `\u001b`, `\u2028`); a field value that is not a plain
 * token is written as a JSON string, so it cannot fake another `key=value` or line either.
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const order = ["debug", "info", "warn", "error"] as const;
  const min = order.indexOf(options.level ?? "info");
  const color = options.color ?? process.stderr.isTTY;
  const output = options.write ?? ((line: string) => process.stderr.write(line));
  const write =
    (level: (typeof order)[number]) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      if (order.indexOf(level) < min) return;
      const fields = extra
        .flatMap((e) => Object.entries(e).map(([k, v]) => `${fieldKey(k)}=${fieldValue(v)}`))
        .join(" ");
      const time = new Date().toISOString().slice(11, 23);
      const tag = color ? `${colors[level]}${level.toUpperCase()}\x1b[0m` : level.toUpperCase();
      output(`${time} ${tag} ${escapeControls(String(message))}${fields ? ` ${fields}` : ""}\n`);
    };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

/** C0, DEL, C1 (`\p{Cc}`), line / paragraph separators, bidi embeddings, overrides, isolates. */
const UNSAFE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
const SHORT_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
/** A value written as is: no whitespace, quote, `=`, backslash or unsafe character. */
const PLAIN = /^[^\s"=\\\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]+$/u;

/** Replaces every unsafe character with an escape (`\n`, `\u001b`, ...). */
export function escapeControls(text: string): string {
  return text.replace(
    UNSAFE,
    (char) => SHORT_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function fieldKey(key: string): string {
  return PLAIN.test(key) ? key : escapeControls(JSON.stringify(key));
}

function fieldValue(value: unknown): string {
  if (typeof value === "string") return PLAIN.test(value) ? value : escapeControls(JSON.stringify(value));
  // JSON escapes C0 controls but leaves DEL, C1 and U+2028/2029 as they are.
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined; // a bigint or a cycle: its string form will do
  }
  return escapeControls(json ?? String(value));
}
