import cliProgress from "cli-progress";

export type Progress = { update(done: number): void; stop(): void };

/** A progress bar on stderr when it is a terminal; silent otherwise (scripts, CI, --json). */
export function progressBar(label: string, total: number | undefined, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}${total ? "/{total}" : ""} | {rate}/s | {duration_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  // An unknown total grows with the rows seen; it starts at 1 so the bar starts empty, not full.
  bar.start(total || 1, 0, { rate: 0 });
  return {
    update(done) {
      if (!total) bar.setTotal(Math.max(1, done));
      bar.update(done, { rate: Math.round(done / Math.max(0.001, (Date.now() - started) / 1000)) });
    },
    stop() {
      bar.stop();
    },
  };
}
