import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runBin, runStart, type SpawnedStack, spawnStack } from "#test/support/spawned-stack.ts";

/**
 * The first minutes of a new user, through the real processes: `npm start` (the built stack), the
 * `onramp` binary (the built CLI), the files between them, and Ctrl+C / SIGTERM.
 */
describe("npm start --in-memory: the CLI finds it, and the files go when it stops", () => {
  const dir = mkdtempSync(join(tmpdir(), "onramp-lifecycle-"));
  const dataDir = join(dir, "data");
  let stack: SpawnedStack;

  before(async () => {
    stack = await spawnStack(dataDir, ["--in-memory"]);
  });
  after(async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes <data-dir>/endpoints.json (0600) with the key pair, its pid and the root CA's path, and prints both", () => {
    const e = stack.endpoints;
    assert.equal(statSync(stack.endpointsFile).mode & 0o777, 0o600);
    assert.equal(e.inMemory, true);
    assert.equal(e.pid, stack.child.pid);
    assert.equal(typeof e.accessKeyId, "string");
    const rootCa = String(e.rootCa);
    const ca = new X509Certificate(readFileSync(rootCa));
    assert.equal(ca.ca, true);
    assert.ok(stack.output().includes(`Root CA          ${rootCa}`), stack.output());
    assert.ok(stack.output().includes(stack.endpointsFile));
    assert.ok(readFileSync(join(dataDir, "aws.env"), "utf8").startsWith("export AWS_ACCESS_KEY_ID="));
  });

  it("onramp status: endpoints, every part healthy, and the demo product's counts", () => {
    const run = runBin(["status", "--json", "--endpoints", stack.endpointsFile]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const status = JSON.parse(run.stdout);
    assert.equal(status.target, "local");
    assert.equal(status.inMemory, true);
    assert.equal(status.endpoints.api, stack.endpoints.api);
    assert.deepEqual(status.health, { api: "ok", awsEndpoint: "ok", dynamodb: "ok", mqtt: "ok" });
    // demo-product (5 serials) and one demo product per MQTT login mode (3 + 2 + 3 devices).
    assert.equal(status.counts.products, 4);
    assert.equal(status.counts.devices.registered, 13);
    assert.equal(status.counts.things, 0);
    const text = runBin(["status", "--endpoints", stack.endpointsFile]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /devices\s+registered 13/);
  });

  it("a second stack on the same data folder is refused while the first runs", () => {
    const second = runStart(["--data-dir", dataDir, "--in-memory", "--api-port", "0", "--aws-port", "0"]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /a local stack is already running on/);
  });

  it("SIGTERM removes endpoints.json, aws.env and the root CA; the CLI then says no stack runs, at once", async () => {
    const stale = join(dir, "stale-endpoints.json");
    copyFileSync(stack.endpointsFile, stale);
    const rootCa = String(stack.endpoints.rootCa);
    assert.equal(await stack.stop("SIGTERM"), 0);
    assert.equal(existsSync(stack.endpointsFile), false);
    assert.equal(existsSync(join(dataDir, "aws.env")), false);
    assert.equal(existsSync(rootCa), false);

    const missing = runBin(["registry", "show", "DEMO-0001"], dir);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no local stack is running \(no endpoints file at .*endpoints\.json\)/);

    // A file left by kill -9: the health check answers (no 7 s of SDK retries, no "GetDevice failed").
    const left = runBin(["registry", "show", "DEMO-0001", "--endpoints", stale]);
    assert.equal(left.code, 1);
    assert.ok(left.stderr.includes(`no local stack is running at ${stack.endpoints.api}`), left.stderr);
    const json = runBin(["registry", "show", "DEMO-0001", "--endpoints", stale, "--json"]);
    assert.equal(json.code, 1);
    assert.equal(JSON.parse(json.stdout).error.code, "NO_LOCAL_STACK");
  });
});

describe("npm start -- --reset", () => {
  it("starts from an empty data folder: products created before are gone, the demo is seeded again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "onramp-reset-"));
    try {
      const first = await spawnStack(dir);
      const created = runBin([
        ...["products", "create", "--product-key", "before-reset", "--name", "Before"],
        ...["--json", "--endpoints", first.endpointsFile],
      ]);
      assert.equal(created.code, 0, created.stdout + created.stderr);
      const keyBefore = first.endpoints.accessKeyId;
      // Ctrl+C
      assert.equal(await first.stop("SIGINT"), 0);
      assert.equal(existsSync(first.endpointsFile), false);

      const second = await spawnStack(dir, ["--reset"]);
      try {
        assert.match(second.output(), /Reset: deleted the local stack's state in/);
        const list = runBin(["products", "list", "--json", "--endpoints", second.endpointsFile]);
        assert.equal(list.code, 0, list.stderr);
        const keys = (JSON.parse(list.stdout) as { productKey: string }[]).map((p) => p.productKey);
        assert.deepEqual(keys.sort(), ["demo-aliyun", "demo-dynamic", "demo-enos", "demo-product"]);
        assert.notEqual(second.endpoints.accessKeyId, keyBefore);
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is documented in npm start --help", () => {
    const help = runStart(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--reset\s+delete the data folder's state first/);
  });
});
