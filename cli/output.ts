/** Prints `value` as JSON when `json` is set, otherwise as aligned `key: value` lines. */
export function printResult(value: Record<string, unknown>, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  const width = Math.max(...Object.keys(value).map((k) => k.length));
  for (const [key, v] of Object.entries(value)) {
    const text = typeof v === "string" ? v : JSON.stringify(v);
    process.stdout.write(`${key.padEnd(width)}  ${text}\n`);
  }
}
