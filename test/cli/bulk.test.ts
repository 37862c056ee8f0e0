import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DescribeCertificateCommand,
  DescribeThingCommand,
  ListThingRegistrationTaskReportsCommand,
  ListThingRegistrationTasksCommand,
  StartThingRegistrationTaskCommand,
} from "@aws-sdk/client-iot";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { readCertificate } from "#core/pki/certificate-reader.ts";
import { createCsr } from "#core/pki/issue.ts";
import { createKeyPair } from "#core/pki/keys.ts";
import { LOCAL_BULK_BUCKET, LOCAL_BULK_ROLE_ARN } from "#local/s3/bulk-defaults.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";
import { runOnramp } from "#test/support/run-cli.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
const COUNT = 50;
const serial = (i: number) => `BULK-${String(i).padStart(4, "0")}`;

describe("onramp bulk provision against the local stack (real IoT and S3 SDK clients)", () => {
  let stack: Stack;
  let dir: string;
  let endpoints: string;
  let s3: S3Client;

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-bulk-"));
    endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    s3 = new S3Client({
      endpoint: stack.endpoints.aws,
      region: stack.endpoints.region,
      credentials: stack.credentials,
      forcePathStyle: true,
    });
    mkdirSync(join(dir, "csrs"));
    for (let i = 0; i < COUNT; i++) {
      const keys = await createKeyPair();
      const csr = await createCsr({ privateKeyPem: keys.privateKeyPem, subject: `CN=${serial(i)}` });
      writeFileSync(join(dir, "csrs", `${serial(i)}.csr`), csr);
    }
    // 45 known devices; the last 5 are imported by --product-key.
    await seedProduct(
      stack.services,
      { productKey: "bulk-pk", name: "Bulk" },
      [...Array(COUNT - 5).keys()].map(serial),
    );
  });
  after(async () => {
    s3.destroy();
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("provisions every device, leaves the disabled one and the one another flow holds alone, and writes {serial}.crt", async () => {
    const registry = stack.services.registry;
    await registry.setDeviceStatus(serial(1), "disabled", { from: ["registered"], reason: "test" });
    const held = await registry.getDevice(serial(2));
    assert.ok(held);
    assert.ok(
      await registry.claimDevice(
        held,
        { id: "other-flow", flow: "vend", publicKeyFingerprint: "x", expiresAt: Date.now() + 600_000 },
        Date.now(),
      ),
    );
    const out = join(dir, "certs");
    const run = await runOnramp(
      "bulk",
      "provision",
      "--csr-dir",
      join(dir, "csrs"),
      "--product-key",
      "bulk-pk",
      "--out",
      out,
      "--json",
      "--endpoints",
      endpoints,
    );
    assert.equal(run.error, undefined, String(run.error));
    const summary = JSON.parse(run.stdout);
    assert.equal(run.exitCode, 3, "a skipped device makes the exit code 3");
    assert.equal(summary.taskStatus, "Completed");
    assert.equal(summary.counts.provisioned, COUNT - 2);
    assert.equal(summary.counts["skipped-disabled"], 1);
    assert.equal(summary.counts["skipped-in-progress"], 1);
    assert.equal(summary.counts.failed, 0);

    for (let i = 0; i < COUNT; i++) {
      const device = await registry.getDevice(serial(i));
      if (i === 1) {
        assert.equal(device?.status, "disabled");
        assert.equal(existsSync(join(out, `${serial(i)}.crt`)), false);
        continue;
      }
      if (i === 2) {
        assert.equal(device?.claim?.id, "other-flow", "the other flow's claim is untouched");
        assert.equal(device?.status, "registered");
        continue;
      }
      assert.equal(device?.status, "provisioned", serial(i));
      assert.equal(device?.claim, undefined);
      const pem = readFileSync(join(out, `${serial(i)}.crt`), "utf8");
      const facts = readCertificate(pem);
      assert.equal(facts.publicKeyFingerprint, device?.publicKeyFingerprint);
      // The registry's certificate is the file's, ACTIVE in AWS IoT, on the device's thing.
      const described = await stack.iotClient.send(
        new DescribeCertificateCommand({ certificateId: device?.certificateId ?? "" }),
      );
      assert.equal(described.certificateDescription?.status, "ACTIVE");
      assert.equal(described.certificateDescription?.certificatePem?.trim(), pem.trim());
      const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: serial(i) }));
      assert.equal(thing.attributes?.provisionedBy, "bulk");
      assert.equal(thing.attributes?.productKey, "bulk-pk");
    }
    // The parameter file and the run report are in the bucket; the journal is gone.
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: LOCAL_BULK_BUCKET, Prefix: "params/" }));
    assert.equal(listed.KeyCount, 1);
    const report = await s3.send(
      new GetObjectCommand({ Bucket: LOCAL_BULK_BUCKET, Key: `reports/${summary.taskId}.json` }),
    );
    assert.equal(JSON.parse(await (report.Body?.transformToString() ?? "")).devices.length, COUNT);
    assert.equal(existsSync(join(out, ".onramp-bulk.json")), false);
  });

  it("a re-run skips devices already done and restores a deleted certificate file without a new task", async () => {
    const out = join(dir, "certs");
    unlinkSync(join(out, `${serial(7)}.crt`));
    const before = await stack.iotClient.send(new ListThingRegistrationTasksCommand({}));
    const run = await runOnramp(
      "bulk",
      "provision",
      "--csr-dir",
      join(dir, "csrs"),
      "--product-key",
      "bulk-pk",
      "--out",
      out,
      "--json",
      "--endpoints",
      endpoints,
    );
    const summary = JSON.parse(run.stdout);
    assert.equal(summary.counts["already-provisioned"], COUNT - 3);
    assert.equal(summary.counts["certificate-restored"], 1);
    assert.equal(summary.counts.provisioned, 0);
    assert.equal(summary.taskId, undefined, "nothing left to register: no task");
    const afterTasks = await stack.iotClient.send(new ListThingRegistrationTasksCommand({}));
    assert.deepEqual(afterTasks.taskIds, before.taskIds);
    const device = await stack.services.registry.getDevice(serial(7));
    assert.equal(
      readCertificate(readFileSync(join(out, `${serial(7)}.crt`), "utf8")).publicKeyFingerprint,
      device?.publicKeyFingerprint,
    );
  });

  it("the emulator's task API: a bad line is an ERRORS report row, reports are presigned links, one task at a time", async () => {
    const keys = await createKeyPair();
    const csr = await createCsr({ privateKeyPem: keys.privateKeyPem, subject: "CN=RAW-1" });
    const lines = [
      JSON.stringify({ SerialNumber: "RAW-1", ProductKey: "raw", CSR: csr }),
      JSON.stringify({ SerialNumber: "RAW-2", ProductKey: "raw", CSR: "not a csr" }),
      '{"SerialNumber": 3}',
    ];
    await s3.send(
      new PutObjectCommand({ Bucket: LOCAL_BULK_BUCKET, Key: "params/raw.jsonl", Body: lines.join("\n") }),
    );
    const templateBody = readFileSync(
      new URL("../../templates/bulk/bulk-device.json", import.meta.url),
      "utf8",
    );
    const { taskId } = await stack.iotClient.send(
      new StartThingRegistrationTaskCommand({
        templateBody,
        inputFileBucket: LOCAL_BULK_BUCKET,
        inputFileKey: "params/raw.jsonl",
        roleArn: LOCAL_BULK_ROLE_ARN,
      }),
    );
    assert.ok(taskId);
    const results = await waitForReports(stack, taskId, "RESULTS");
    const errors = await waitForReports(stack, taskId, "ERRORS");
    const rows = async (links: string[]) =>
      (await Promise.all(links.map(async (l) => (await fetch(l)).text())))
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    const ok = await rows(results);
    const bad = await rows(errors);
    assert.deepEqual(
      ok.map((r) => r.lineNumber),
      [0],
    );
    assert.match(ok[0].response.CertificatePem, /BEGIN CERTIFICATE/);
    assert.match(ok[0].response.ResourceArns.thing, /:thing\/RAW-1$/);
    assert.deepEqual(
      bad.map((r) => [r.lineNumber, r.errorCode]),
      [
        [1, "InvalidRequestException"],
        [2, "InvalidRequestException"],
      ],
    );
    // A link without its signature is refused, as S3 refuses anonymous reads.
    const unsigned = (results[0] ?? "").split("?")[0] ?? "";
    assert.equal((await fetch(unsigned)).status, 403);
  });
});

async function waitForReports(
  stack: Stack,
  taskId: string,
  reportType: "RESULTS" | "ERRORS",
): Promise<string[]> {
  for (;;) {
    const { DescribeThingRegistrationTaskCommand } = await import("@aws-sdk/client-iot");
    const task = await stack.iotClient.send(new DescribeThingRegistrationTaskCommand({ taskId }));
    if (task.status === "Completed") {
      assert.equal(task.percentageProgress, 100);
      const page = await stack.iotClient.send(
        new ListThingRegistrationTaskReportsCommand({ taskId, reportType }),
      );
      assert.equal(page.reportType, reportType);
      return page.resourceLinks ?? [];
    }
    assert.equal(task.status, "InProgress");
    await new Promise((r) => setTimeout(r, 50));
  }
}
