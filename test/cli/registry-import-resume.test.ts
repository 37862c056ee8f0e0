import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createProduct } from "#core/registry/manage-products.ts";
import { startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type Checkpoint = { line: number; sha256: string; outcome: { written: number } };
type Report = {
  rows: number;
  written: number;
  skippedExisting: number;
  resumedAfterLine?: number;
  rejected: { line: number; field: string }[];
};

const ROWS = 20_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `onramp registry import` killed with SIGKILL mid-import (a real process, a real kill), then run
 * again: it continues after the checkpoint's line, re-writes nothing already there (a device an
 * operator changed meanwhile keeps its state), reports every rejected row, ends with every row in
 * the registry, and removes its checkpoint.
 */
describe("onramp registry import: resume after kill -9", () => {
  let stack: Stack;
  let dir: string;
  let endpoints: string;
  let csv: string;

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-import-resume-"));
    endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    await createProduct(stack.services, { productKey: "resume", name: "Resume" });
    csv = join(dir, "serials.csv");
    const lines = ["serialNumber"];
    for (let i = 0; i < ROWS; i++) lines.push(i === 8 ? "bad serial!" : `RS-${String(i).padStart(6, "0")}`);
    writeFileSync(csv, `${lines.join("\n")}\n`);
  });
  after(async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function startImport() {
    const child = spawn(
      process.execPath,
      [
        ...["--import", "tsx", "cli/main.ts", "registry", "import", csv],
        ...["--product-key", "resume", "--json", "--concurrency", "2", "--endpoints", endpoints],
      ],
      { env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" } },
    );
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    return { child, exited, stdout: () => stdout };
  }

  it("continues after the checkpoint, writes nothing twice, and completes", async () => {
    const checkpointFile = `${csv}.import-checkpoint.json`;
    const first = startImport();
    let checkpoint: Checkpoint | undefined;
    let finished = false;
    void first.exited.then(() => {
      finished = true;
    });
    while (!finished) {
      if (existsSync(checkpointFile)) {
        checkpoint = JSON.parse(readFileSync(checkpointFile, "utf8")) as Checkpoint;
        if (checkpoint.line >= 2_000) break;
      }
      await sleep(20);
    }
    assert.ok(!finished, "the import was still running when killed");
    first.child.kill("SIGKILL");
    assert.equal((await first.exited).signal, "SIGKILL");
    // The file as the kill left it (written by rename, so whole).
    checkpoint = JSON.parse(readFileSync(checkpointFile, "utf8")) as Checkpoint;
    assert.ok(checkpoint.line >= 2_000 && checkpoint.line <= ROWS + 1);

    // An operator changes a device the first run wrote; the re-run must not reset it.
    const early = "RS-000100";
    await stack.services.registry.setDeviceStatus(early, "disabled", { from: ["registered"] });

    const second = startImport();
    const { code } = await second.exited;
    const report = JSON.parse(second.stdout()) as Report;
    assert.equal(code, 3, "rejected rows give exit code 3");
    assert.equal(report.resumedAfterLine, checkpoint.line);
    assert.deepEqual(
      report.rejected.map((r) => [r.line, r.field]),
      [[10, "serialNumber"]],
      "a rejected row before the checkpoint is still reported",
    );
    assert.equal(report.rows, ROWS);
    assert.equal(
      report.written + report.skippedExisting,
      ROWS - 1,
      "every good row counted once: written (either run) or found present",
    );
    assert.ok(report.written >= checkpoint.outcome.written);
    assert.equal(existsSync(checkpointFile), false, "the checkpoint is removed once complete");
    assert.equal((await stack.services.registry.getDevice(early))?.status, "disabled", "never re-written");

    let listed = 0;
    let cursor: string | undefined;
    do {
      const page = await stack.services.registry.listDevices("resume", {
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      listed += page.devices.length;
      cursor = page.cursor;
    } while (cursor);
    assert.equal(listed, ROWS - 1, "every good row is in the registry");
  });

  for (const other of ["version of the file", "registry table"] as const) {
    it(`starts over when the checkpoint belongs to another ${other}`, async () => {
      const checkpointFile = `${csv}.import-checkpoint.json`;
      const fileHash = createHash("sha256").update(readFileSync(csv)).digest("hex");
      const thisRegistry = `local:${stack.endpoints.dynamodb}:${stack.endpoints.tableName}`;
      writeFileSync(
        checkpointFile,
        JSON.stringify({
          version: 1,
          sha256: other === "version of the file" ? "0".repeat(64) : fileHash,
          registry: other === "registry table" ? "aws:eu-west-1:another-table" : thisRegistry,
          productKey: "resume",
          line: ROWS,
          outcome: { written: 5, skippedExisting: 0, unprocessedRetries: 0, throttledRetries: 0 },
        }),
      );
      const run = startImport();
      await run.exited;
      const report = JSON.parse(run.stdout()) as Report;
      assert.equal(report.resumedAfterLine, undefined);
      assert.equal(report.written, 0);
      assert.equal(report.skippedExisting, ROWS - 1, "all checked again, none re-written");
    });
  }
});
