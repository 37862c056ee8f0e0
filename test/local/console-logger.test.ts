import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Logger as PowertoolsLogger } from "@aws-lambda-powertools/logger";
import fc from "fast-check";
import { consoleLogger, escapeControls } from "#local/console-logger.ts";

/** A console logger writing into an array (no color, every level). */
const capture = () => {
  const lines: string[] = [];
  const logger = consoleLogger({ level: "debug", color: false, write: (line) => lines.push(line) });
  return { logger, lines };
};

/** Every character a log line must never carry raw: C0, DEL, C1, U+2028/2029, bidi controls. */
const UNSAFE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
/** One line: unsafe characters only as the final newline. */
const isOneLine = (line: string) => line.endsWith("\n") && !UNSAFE.test(line.slice(0, -1));

const FORGED = "SN-1\n12:00:00.000 INFO vend: certificate vended serialNumber=SN-2";

describe("console logger: one call is one line, whatever the fields carry", () => {
  it("escapes a forged line in a field: one line, the text kept as an escape", () => {
    const { logger, lines } = capture();
    logger.warn("mqtt: connect", { clientId: FORGED, outcome: "refused" });
    assert.equal(lines.length, 1);
    const [line] = lines as [string];
    assert.equal(isOneLine(line), true, line);
    assert.equal(line.split("\n").length, 2, "a single newline, at the end");
    assert.match(line, / WARN mqtt: connect clientId=".*" outcome=refused\n$/);
    assert.ok(line.includes(JSON.stringify(FORGED)), "the client id as a JSON string, \\n escaped");
  });

  it("escapes C0, DEL, C1, U+2028/2029 and bidi controls in messages, keys and values", () => {
    const nasty = "a\u0000b\u001bc\u007fd\u0085e\u009bf\u2028g\u2029h\u202ei\u2066j\r\tk";
    const { logger, lines } = capture();
    logger.info(`message ${nasty}`, { [`key${nasty}`]: nasty, nested: { value: nasty }, list: [nasty] });
    assert.equal(lines.length, 1);
    const [line] = lines as [string];
    assert.equal(isOneLine(line), true, JSON.stringify(line));
    for (const expected of ["\\u0000", "\\u001b", "\\u007f", "\\u0085", "\\u009b", "\\u2028", "\\u2029"]) {
      assert.ok(line.includes(expected), `${expected} in ${line}`);
    }
    assert.ok(line.includes("\\u202e") && line.includes("\\u2066") && line.includes("\\r\\tk"));
  });

  it("quotes values that could fake another field, and leaves plain tokens bare", () => {
    const { logger, lines } = capture();
    logger.info("m", { clientId: "x outcome=accepted", plain: "SN-0001", count: 3, text: 'say "hi"' });
    assert.equal(
      lines[0]?.slice(13),
      'INFO m clientId="x outcome=accepted" plain=SN-0001 count=3 text="say \\"hi\\""\n',
    );
  });

  it("never writes more than one line per call (property)", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary" }),
        fc.dictionary(fc.string({ unit: "binary" }), fc.oneof(fc.string({ unit: "binary" }), fc.jsonValue())),
        (message, fields) => {
          const { logger, lines } = capture();
          logger.error(message, fields);
          return lines.length === 1 && isOneLine(lines[0] ?? "");
        },
      ),
    );
  });

  it("escapeControls keeps printable text, including non-ASCII, as it is", () => {
    assert.equal(escapeControls('Zürich 東京 ✓ a=b "q"'), 'Zürich 東京 ✓ a=b "q"');
    assert.equal(escapeControls("a\nb"), "a\\nb");
  });
});

/**
 * The Lambda side: the handlers log through Powertools Logger (lambdas/entrypoints/lambda-wiring.ts),
 * which writes one JSON document per line. JSON escapes C0 controls, so a newline in a field cannot
 * start a new line; DEL, C1 and U+2028/2029 stay raw inside the JSON string, which no line-based
 * reader splits on, and the parsed entry gives back the exact text.
 */
describe("Powertools Logger (Lambda): one JSON line per entry", () => {
  it("keeps a forged line inside the JSON string of its field", () => {
    // Powertools writes INFO to stdout and WARN / ERROR to stderr.
    const written: string[] = [];
    const streams = [process.stdout, process.stderr];
    const originals = streams.map((stream) => stream.write);
    for (const stream of streams) {
      stream.write = ((chunk: string | Uint8Array) => {
        written.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
        return true;
      }) as typeof stream.write;
    }
    try {
      const logger = new PowertoolsLogger({ serviceName: "log-injection-test" });
      logger.warn("mqtt: connect", { clientId: FORGED });
      logger.info(`message ${FORGED}\u2028\r`, { other: "\u001b[31mred\u0085" });
    } finally {
      streams.forEach((stream, i) => {
        stream.write = originals[i] as typeof stream.write;
      });
    }
    const output = written.join("");
    const lines = output.split("\n").filter((line) => line.length > 0);
    assert.equal(lines.length, 2, output);
    const [first, second] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(first?.clientId, FORGED);
    assert.equal(first?.message, "mqtt: connect");
    assert.equal(second?.message, `message ${FORGED}\u2028\r`);
    assert.equal(second?.other, "\u001b[31mred\u0085");
    const rawC0 = [...lines.join("")].some((char) => char.charCodeAt(0) < 0x20);
    assert.equal(rawC0, false, "no raw C0 character in the output");
  });
});
