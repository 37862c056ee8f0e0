import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { progressBar } from "#cli/progress.ts";
import { deriveDeviceSecret } from "#credentials/derived-secret.ts";
import { startTestStack } from "#test/support/local-stack.ts";
import { runOnramp } from "#test/support/run-cli.ts";
import { runBin, runBinAsync } from "#test/support/spawned-stack.ts";

/** What cost a new user time in the first minutes (issue 13), each through the real CLI. */
describe("onramp: mistakes said at once, and said clearly", () => {
  let stack: Awaited<ReturnType<typeof startTestStack>>;
  let dir: string;
  let endpoints: string;
  let productSecret: string;

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-first-"));
    endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    const created = await runOnramp(
      ...["products", "create", "--product-key", "first", "--name", "First", "--json"],
      ...["--endpoints", endpoints],
    );
    assert.equal(created.exitCode, 0, String(created.error));
    productSecret = JSON.parse(created.stdout).productSecret;
  });
  after(async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const fails = async (...args: string[]) => {
    const run = await runOnramp(...args, "--endpoints", endpoints);
    assert.notEqual(run.exitCode, 0, run.stdout);
    return String((run.error as Error | undefined)?.message);
  };

  describe("products create validates what devices would trip over later", () => {
    it("refuses a template that does not exist", async () => {
      const message = await fails(
        "products",
        "create",
        "--product-key",
        "prod-one",
        "--name",
        "P",
        "--template",
        "nope",
      );
      assert.match(message, /no provisioning template named nope/);
    });

    it("refuses a malformed --trust-ca id", async () => {
      const message = await fails(
        "products",
        "create",
        "--product-key",
        "prod-two",
        "--name",
        "P",
        "--trust-ca",
        "my-ca",
      );
      assert.match(message, /"my-ca" is not a CA certificate id \(64 lowercase hexadecimal/);
    });

    it("refuses a well-formed --trust-ca id that AWS IoT does not know; accepts a registered CA", async () => {
      const unknown = "ab".repeat(32);
      const message = await fails(
        ...["products", "create", "--product-key", "prod-three", "--name", "P", "--trust-ca", unknown],
      );
      assert.match(message, new RegExp(`no CA certificate ${unknown} is registered`));
      const caDir = join(dir, "ca");
      assert.equal((await runOnramp("ca", "create", "--out", caDir)).exitCode, 0);
      const registered = await runOnramp(
        ...[
          "ca",
          "register",
          "--ca-cert",
          join(caDir, "root-ca.pem"),
          "--ca-key",
          join(caDir, "root-ca.key"),
        ],
        ...["--json", "--endpoints", endpoints],
      );
      assert.equal(registered.exitCode, 0, String(registered.error));
      const caId = JSON.parse(registered.stdout).caCertificateId as string;
      const created = await runOnramp(
        ...["products", "create", "--product-key", "prod-three", "--name", "P", "--trust-ca", caId],
        ...["--json", "--endpoints", endpoints],
      );
      assert.equal(created.exitCode, 0, String(created.error));
      assert.deepEqual(JSON.parse(created.stdout).trustedCaIds, [caId]);
      // Nothing was created by the refused attempts.
      const list = JSON.parse(
        (await runOnramp("products", "list", "--json", "--endpoints", endpoints)).stdout,
      );
      assert.deepEqual(list.map((p: { productKey: string }) => p.productKey).sort(), ["first", "prod-three"]);
    });
  });

  it("device vend --out refuses to overwrite a key that is already there, before calling the API", async () => {
    const out = join(dir, "device-FIRST-1");
    mkdirSync(out);
    writeFileSync(join(out, "device.key"), "the only copy of an earlier key");
    const message = await fails(
      ...["device", "vend", "--serial", "FIRST-1", "--product-key", "first"],
      ...["--secret", deriveDeviceSecret(productSecret, "FIRST-1"), "--out", out],
    );
    assert.match(message, /device\.key exists already; refusing to overwrite it/);
    assert.equal(readFileSync(join(out, "device.key"), "utf8"), "the only copy of an earlier key");
    assert.equal(existsSync(join(out, "device.crt")), false);
  });

  it("registry list --product-key of an unknown product says so", async () => {
    assert.match(await fails("registry", "list", "--product-key", "nope"), /unknown product nope/);
  });

  describe("registry import", () => {
    it("rejects a row with more values than the header has columns, by line and field", async () => {
      const csv = join(dir, "extra.csv");
      writeFileSync(csv, "serialNumber\nX-0001\nX-0002,surprise\nX-0003\n");
      const run = await runOnramp(
        "registry",
        "import",
        csv,
        "--product-key",
        "first",
        "--json",
        "--endpoints",
        endpoints,
      );
      assert.equal(run.exitCode, 3);
      const report = JSON.parse(run.stdout);
      assert.equal(report.rows, 3);
      assert.equal(report.written, 2);
      assert.deepEqual(report.rejected, [
        {
          line: 3,
          field: "column 2",
          reason: "2 values, but the header names 1 column (serialNumber)",
        },
      ]);
    });

    it("a CSV without product key (no column, no --product-key) gives one clear error, not one per row", async () => {
      const csv = join(dir, "no-product.csv");
      writeFileSync(csv, "serialNumber\nY-0001\nY-0002\nY-0003\n");
      const run = await runOnramp("registry", "import", csv, "--endpoints", endpoints);
      assert.equal(run.exitCode, 1);
      assert.match(String((run.error as Error).message), /has no productKey column: pass --product-key KEY/);
      assert.equal(run.stdout, "");
    });

    it("an unknown --product-key is one error too", async () => {
      const csv = join(dir, "unknown-product.csv");
      writeFileSync(csv, "serialNumber\nZ-0001\n");
      assert.match(await fails("registry", "import", csv, "--product-key", "nope"), /unknown product nope/);
    });
  });

  it("under --json, errors are JSON on stdout ({error: {code, message}}), for every kind of error", async () => {
    const cases: [string[], string, RegExp][] = [
      [["registry", "show", "NOPE-1"], "DEVICE_NOT_FOUND", /No device with serial number NOPE-1/],
      [["registry", "list", "--product-key", "nope"], "UNKNOWN_PRODUCT", /unknown product nope/],
      [["products", "create", "--product-key", "first", "--name", "x"], "PRODUCT_EXISTS", /already exists/],
      [["registry", "show"], "commander.missingArgument", /missing required argument/],
    ];
    for (const [args, code, message] of cases) {
      const run = await runBinAsync([...args, "--json", "--endpoints", endpoints]);
      assert.equal(run.code, 1, `${args.join(" ")}: ${run.stdout}${run.stderr}`);
      const body = JSON.parse(run.stdout) as { error: { code: string; message: string } };
      assert.equal(body.error.code, code, args.join(" "));
      assert.match(body.error.message, message);
      assert.equal(run.stderr, "", args.join(" "));
    }
  });

  it("help texts say what they mean (no internal references such as 'seed 002')", () => {
    for (const args of [
      ["creds", "aliyun-register", "--help"],
      ["device", "issue", "--help"],
      ["creds", "--help"],
    ]) {
      const run = runBin(args);
      assert.equal(run.code, 0);
      assert.doesNotMatch(run.stdout, /seed \d{3}/, args.join(" "));
    }
    assert.match(runBin(["creds", "aliyun-register", "--help"]).stdout, /dynamic-registration/);
  });
});

describe("the import progress bar", () => {
  it("starts empty, with or without a known total", () => {
    for (const total of [1000, undefined]) {
      let written = "";
      const stderr = process.stderr;
      const write = stderr.write;
      const wasTty = stderr.isTTY;
      stderr.isTTY = true;
      stderr.write = ((chunk: unknown) => {
        written += String(chunk);
        return true;
      }) as typeof write;
      try {
        const bar = progressBar("importing", total, true);
        bar.stop();
      } finally {
        stderr.write = write;
        stderr.isTTY = wasTty;
      }
      // cli-progress draws complete cells with █ and incomplete ones with ░ (shades_classic).
      assert.match(written, /importing \[░+\] 0/, JSON.stringify(written));
      assert.doesNotMatch(written, /█/);
    }
  });
});
