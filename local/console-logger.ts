import type { Logger } from "#core/logger.ts";

const colors = { debug: "\x1b[90m", info: "\x1b[36m", warn: "\x1b[33m", error: "\x1b[31m" } as const;

/** Readable one-line logs for the local stack (structured keys after the message). */
export function consoleLogger(options: { level?: keyof typeof colors; color?: boolean } = {}): Logger {
  const order = ["debug", "info", "warn", "error"] as const;
  const min = order.indexOf(options.level ?? "info");
  const color = options.color ?? process.stderr.isTTY;
  const write =
    (level: (typeof order)[number]) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      if (order.indexOf(level) < min) return;
      const fields = extra
        .flatMap((e) =>
          Object.entries(e).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`),
        )
        .join(" ");
      const time = new Date().toISOString().slice(11, 23);
      const tag = color ? `${colors[level]}${level.toUpperCase()}\x1b[0m` : level.toUpperCase();
      process.stderr.write(`${time} ${tag} ${message}${fields ? ` ${fields}` : ""}\n`);
    };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
