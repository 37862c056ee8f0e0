import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { silentLogger } from "#core/logger.ts";
import { startLocalStack } from "#local/stack.ts";
import { seedProduct } from "#test/support/local-stack.ts";

/** Every folder and file below `dir` with its permission bits, relative paths. */
function modes(dir: string, prefix = ""): Array<{ path: string; mode: number; folder: boolean }> {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    const shown = join(prefix, entry.name);
    const mode = statSync(path).mode & 0o777;
    return entry.isDirectory()
      ? [{ path: shown, mode, folder: true }, ...modes(path, shown)]
      : [{ path: shown, mode, folder: false }];
  });
}

function assertPrivate(dir: string): void {
  assert.equal(statSync(dir).mode & 0o777, 0o700, "the data folder");
  const open = modes(dir).filter((e) => e.mode !== (e.folder ? 0o700 : 0o600));
  assert.deepEqual(
    open.map((e) => `${e.path} ${e.mode.toString(8)}`),
    [],
    "every folder 0700, every file 0600",
  );
}

describe("local stack: the data folder is private", () => {
  it("creates the folder 0700 and every file in it 0600, dynalite's LevelDB files included", async () => {
    const root = mkdtempSync(join(tmpdir(), "onramp-privacy-"));
    const dataDir = join(root, "data");
    try {
      const stack = await startLocalStack({
        dataDir,
        logger: silentLogger,
        ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0 },
      });
      try {
        // Writes to every store: DynamoDB (LevelDB), Secrets Manager, the IoT emulator.
        await seedProduct(stack.services, { productKey: "privacy", name: "Privacy" }, ["PRIV-1", "PRIV-2"]);
        await stack.iot.flush();
      } finally {
        await stack.close();
      }
      const files = modes(dataDir).map((e) => e.path);
      for (const expected of ["endpoints.json", "aws-credentials.json", "aws.env", "secrets.json"]) {
        assert.ok(files.includes(expected), `${expected} is written`);
      }
      assert.ok(
        files.some((path) => path.startsWith("dynamodb/") && path.endsWith(".log")),
        `dynalite wrote its LevelDB files: ${files}`,
      );
      assertPrivate(dataDir);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("makes an existing folder with open modes private at start", async () => {
    const root = mkdtempSync(join(tmpdir(), "onramp-privacy-"));
    const dataDir = join(root, "data");
    try {
      mkdirSync(join(dataDir, "dynamodb"), { recursive: true });
      mkdirSync(join(dataDir, "iot"), { recursive: true });
      chmodSync(dataDir, 0o755);
      chmodSync(join(dataDir, "dynamodb"), 0o755);
      writeFileSync(join(dataDir, "secrets.json"), "[]", { mode: 0o644 });
      writeFileSync(join(dataDir, "iot", "root-ca.pem.old"), "old", { mode: 0o664 });
      const stack = await startLocalStack({
        dataDir,
        logger: silentLogger,
        ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0 },
      });
      await stack.close();
      assertPrivate(dataDir);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
