import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DynamoDBClient, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { CliError } from "#cli/cli-error.ts";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { createCsr, createKeyPair } from "#core/pki/issue.ts";
import { startTestStack } from "#test/support/local-stack.ts";
import { onramp } from "#test/support/run-cli.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

describe("onramp products / registry / device vend against the local stack", () => {
  let stack: Stack;
  let dir: string;
  let endpoints: string;

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-cli-"));
    endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
  });
  after(async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("creates a product once and prints its secret; a second create is refused", async () => {
    const out = await onramp(
      "products",
      "create",
      "--product-key",
      "thermo",
      "--name",
      "Thermo",
      "--json",
      "--endpoints",
      endpoints,
    );
    const created = JSON.parse(out.stdout) as { productKey: string; productSecret: string; authMode: string };
    assert.equal(created.productKey, "thermo");
    assert.equal(created.authMode, "device-secret");
    assert.equal(Buffer.from(created.productSecret, "base64").length, 32);
    await assert.rejects(
      onramp("products", "create", "--product-key", "thermo", "--name", "Again", "--endpoints", endpoints),
      /already exists/,
    );
    const list = JSON.parse(
      (await onramp("products", "list", "--json", "--endpoints", endpoints)).stdout,
    ) as unknown[];
    assert.equal(list.length, 1);
  });

  it("imports a CSV: rejects bad rows by line and field, writes the rest, and is safe to re-run", async () => {
    const csv = join(dir, "devices.csv");
    const rejected = join(dir, "rejected.csv");
    writeFileSync(
      csv,
      [
        "serialNumber,productKey,deviceSecret",
        "TH-0001,thermo,",
        "TH-0002,thermo,own-secret-of-device-2",
        "bad serial!,thermo,",
        "TH-0003,nope,",
        "TH-0001,thermo,",
        "TH-0004,thermo,short",
        "TH-0005,,",
      ].join("\n"),
    );
    const first = await onramp(
      "registry",
      "import",
      csv,
      "--product-key",
      "thermo",
      "--json",
      "--rejected",
      rejected,
      "--endpoints",
      endpoints,
    );
    const report = JSON.parse(first.stdout) as {
      written: number;
      skippedExisting: number;
      rejected: { line: number; field: string }[];
    };
    assert.equal(first.exitCode, 3, "rejected rows give exit code 3");
    assert.equal(report.written, 3);
    assert.deepEqual(
      report.rejected.map((r) => [r.line, r.field]),
      [
        [4, "serialNumber"],
        [5, "productKey"],
        [6, "serialNumber"],
        [7, "deviceSecret"],
      ],
    );
    assert.match(readFileSync(rejected, "utf8"), /^line,field,reason\n4,serialNumber,/);

    await stack.services.registry.setDeviceStatus("TH-0001", "disabled", { from: ["registered"] });
    const again = JSON.parse(
      (await onramp("registry", "import", csv, "--product-key", "thermo", "--json", "--endpoints", endpoints))
        .stdout,
    ) as {
      written: number;
      skippedExisting: number;
    };
    assert.equal(again.written, 0);
    assert.equal(again.skippedExisting, 3);
    assert.equal(
      (await stack.services.registry.getDevice("TH-0001"))?.status,
      "disabled",
      "a re-run resets nothing",
    );
  });

  it("names the missing column when the header is wrong, and writes nothing", async () => {
    const csv = join(dir, "bad-header.csv");
    writeFileSync(csv, "serial,product\nX-1,thermo\n");
    await assert.rejects(onramp("registry", "import", csv, "--endpoints", endpoints), (e: unknown) => {
      assert.ok(e instanceof CliError);
      assert.match(e.message, /line 1: the header must name the columns/);
      return true;
    });
    assert.equal(await stack.services.registry.getDevice("X-1"), undefined);
  });

  it("keeps a device's own secret sealed, and the device vends with it", async () => {
    const device = await stack.services.registry.getDevice("TH-0002");
    assert.ok(
      device?.sealedSecret?.startsWith("v2.legacy."),
      "sealed under the registry key, named by its id",
    );
    assert.ok(!JSON.stringify(device).includes("own-secret-of-device-2"));
    const csr = await createCsr({
      privateKeyPem: (await createKeyPair()).privateKeyPem,
      subject: { commonName: "TH-0002" },
    });
    const res = await requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: "TH-0002",
      productKey: "thermo",
      secret: "own-secret-of-device-2",
      keyMode: "csr",
      csr,
    });
    assert.equal(res.status, 201);
  });

  it("disables, re-enables and revokes a device, and shows it", async () => {
    const show = async () =>
      JSON.parse(
        (await onramp("registry", "show", "TH-0003", "--json", "--endpoints", endpoints)).stdout,
      ) as Record<string, string>;
    await onramp(
      "registry",
      "import",
      join(dir, "devices.csv"),
      "--product-key",
      "thermo",
      "--endpoints",
      endpoints,
    );
    const dir2 = join(dir, "th3.csv");
    writeFileSync(dir2, "serialNumber\nTH-0003\n");
    await onramp("registry", "import", dir2, "--product-key", "thermo", "--endpoints", endpoints);
    assert.equal((await show()).status, "registered");
    await onramp("registry", "disable", "TH-0003", "--reason", "returned", "--endpoints", endpoints);
    assert.equal((await show()).status, "disabled");
    assert.equal((await show()).statusReason, "returned");
    await onramp("registry", "enable", "TH-0003", "--endpoints", endpoints);
    assert.equal((await show()).status, "registered");
    await onramp("registry", "revoke", "TH-0003", "--endpoints", endpoints);
    assert.equal((await show()).status, "revoked");
    await assert.rejects(onramp("registry", "enable", "TH-0003", "--endpoints", endpoints), /is revoked/);
    await assert.rejects(onramp("registry", "show", "NOPE", "--endpoints", endpoints), /No device/);
  });

  it("vends like a device with `onramp device vend` and saves the files", async () => {
    const { productSecret } = JSON.parse(
      (
        await onramp(
          "products",
          "create",
          "--product-key",
          "plain",
          "--name",
          "P",
          "--auth-mode",
          "product-secret",
          "--json",
          "--endpoints",
          endpoints,
        )
      ).stdout,
    ) as { productSecret: string };
    const csv = join(dir, "plain.csv");
    writeFileSync(csv, "serialNumber\nPL-1\n");
    await onramp("registry", "import", csv, "--product-key", "plain", "--endpoints", endpoints);
    const out = join(dir, "PL-1");
    const res = await onramp(
      "device",
      "vend",
      "--serial",
      "PL-1",
      "--product-key",
      "plain",
      "--secret",
      productSecret,
      "--out",
      out,
      "--json",
      "--endpoints",
      endpoints,
    );
    const summary = JSON.parse(res.stdout) as { certificateId: string; thingName: string };
    assert.equal(summary.thingName, "PL-1");
    assert.match(readFileSync(join(out, "device.key"), "utf8"), /PRIVATE KEY/);
    assert.match(readFileSync(join(out, "device.crt"), "utf8"), /BEGIN CERTIFICATE/);
    assert.ok(!res.stdout.includes("PRIVATE KEY"), "--json never prints the key");
    await assert.rejects(
      onramp(
        "device",
        "vend",
        "--serial",
        "PL-1",
        "--product-key",
        "plain",
        "--secret",
        "wrong",
        "--endpoints",
        endpoints,
      ),
      /HTTP 401 BAD_SIGNATURE/,
    );
  });

  it("lists a product's devices page by page in serial order, and migrates rows written before sharding", async () => {
    await onramp("products", "create", "--product-key", "paged", "--name", "Paged", "--endpoints", endpoints);
    const serials = ["PG-07", "PG-01", "PG-10", "PG-03", "PG-05", "PG-02", "PG-09"];
    const csv = join(dir, "paged.csv");
    writeFileSync(csv, `serialNumber\n${serials.join("\n")}\n`);
    await onramp("registry", "import", csv, "--product-key", "paged", "--endpoints", endpoints);
    // Two rows as the registry wrote them before the index was sharded (dynalite checks no credentials).
    const dynamo = new DynamoDBClient({
      endpoint: stack.endpoints.dynamodb,
      region: "us-east-1",
      credentials: { accessKeyId: "DYNALITE", secretAccessKey: "dynalite-does-not-check" },
    });
    for (const serialNumber of ["PG-04", "PG-08"]) {
      await stack.services.registry.createDevice({ serialNumber, productKey: "paged" });
      await dynamo.send(
        new UpdateItemCommand({
          TableName: stack.endpoints.tableName,
          Key: { pk: { S: `DEVICE#${serialNumber}` }, sk: { S: "DEVICE" } },
          UpdateExpression: "SET gsi1pk = :legacy",
          ExpressionAttributeValues: { ":legacy": { S: "PRODUCT#paged" } },
        }),
      );
    }
    dynamo.destroy();
    const listAll = async () => {
      const seen: string[][] = [];
      let cursor: string | undefined;
      do {
        const page = JSON.parse(
          (
            await onramp(
              "registry",
              "list",
              "--product-key",
              "paged",
              "--limit",
              "4",
              "--json",
              "--endpoints",
              endpoints,
              ...(cursor ? ["--cursor", cursor] : []),
            )
          ).stdout,
        ) as { devices: { serialNumber: string }[]; cursor?: string };
        seen.push(page.devices.map((d) => d.serialNumber));
        cursor = page.cursor;
      } while (cursor);
      return seen;
    };
    const expected = [["PG-01", "PG-02", "PG-03", "PG-04"], ["PG-05", "PG-07", "PG-08", "PG-09"], ["PG-10"]];
    assert.deepEqual(await listAll(), expected);

    const migrated = JSON.parse(
      (await onramp("registry", "migrate", "--product-key", "paged", "--json", "--endpoints", endpoints))
        .stdout,
    ) as { products: { productKey: string; moved: number }[] };
    assert.deepEqual(migrated.products, [{ productKey: "paged", moved: 2, skipped: 0 }]);
    assert.deepEqual(await listAll(), expected, "the same pages after migration");
    await assert.rejects(
      onramp("registry", "list", "--product-key", "paged", "--limit", "0", "--endpoints", endpoints),
      /--limit must be a whole number from 1 to 1000/,
    );
    await assert.rejects(
      onramp("registry", "migrate", "--product-key", "nope", "--endpoints", endpoints),
      /unknown product nope/,
    );
  });
});
