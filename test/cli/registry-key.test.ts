import assert from "node:assert/strict";
import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { buildProgram } from "#cli/main.ts";
import {
  type RotationReport,
  rotateRegistryKey,
  type SealedSecretRows,
} from "#core/registry/rotate-registry-key.ts";
import { LEGACY_KEY_ID, openSecret, sealedKeyId, sealSecret } from "#core/registry/sealed-secret.ts";
import { opensslCsr, startTestStack } from "#test/support/local-stack.ts";
import { onramp } from "#test/support/run-cli.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

const own = (i: number) => `own-secret-of-lock-${String(i).padStart(3, "0")}`;
const serial = (i: number) => `LK-${String(i).padStart(3, "0")}`;
const DEVICES = 40;
/** Devices 0..29 have their own (sealed) secret; 30..39 sign with the derived secret. */
const WITH_OWN_SECRET = 30;

/** A value in the legacy v1 format, as the first release sealed it (AAD: the serial). */
function sealV1(secret: string, key: Buffer, serialNumber: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(serialNumber, "utf8"));
  const body = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return [
    "v1",
    iv.toString("base64url"),
    body.toString("base64url"),
    cipher.getAuthTag().toString("base64url"),
  ].join(".");
}

describe("onramp registry rotate-key against the local stack", () => {
  let stack: Stack;
  let dir: string;
  let endpoints: string;

  const rows = async (): Promise<Map<string, string>> => {
    const all = new Map<string, string>();
    for await (const page of stack.services.sealedSecrets.listSealedSecrets())
      for (const row of page) all.set(row.serialNumber, row.sealedSecret);
    return all;
  };
  const keyIdsInUse = async () => new Set([...(await rows()).values()].map(sealedKeyId));
  const vend = (i: number, secret: string) =>
    requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial(i),
      productKey: "lock",
      secret,
      keyMode: "csr",
      csr: opensslCsr(serial(i)).csrPem,
    });
  const rotate = async (...args: string[]) => {
    const run = await onramp("registry", "rotate-key", "--json", "--endpoints", endpoints, ...args);
    return { exitCode: run.exitCode, report: JSON.parse(run.stdout) as RotationReport };
  };

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-rotate-"));
    endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    await onramp("products", "create", "--product-key", "lock", "--name", "Lock", "--endpoints", endpoints);
    const csv = join(dir, "locks.csv");
    const lines = Array.from(
      { length: DEVICES },
      (_, i) => `${serial(i)},lock,${i < WITH_OWN_SECRET ? own(i) : ""}`,
    );
    writeFileSync(csv, `serialNumber,productKey,deviceSecret\n${lines.join("\n")}\n`);
    await onramp("registry", "import", csv, "--json", "--endpoints", endpoints);
    // One row as the first release wrote it (v1, no key id), under the same legacy key.
    const legacy = (await stack.services.registryKeys.getRegistryKeys({ fresh: true })).keys.get(
      LEGACY_KEY_ID,
    )!;
    const before = (await rows()).get(serial(1))!;
    assert.ok(
      await stack.services.sealedSecrets.replaceSealedSecret(
        serial(1),
        before,
        sealV1(own(1), legacy, serial(1)),
      ),
    );
  });
  after(async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts with every sealed secret under the legacy key, and devices vend with their own secret", async () => {
    const ring = await stack.services.registryKeys.getRegistryKeys({ fresh: true });
    assert.equal(ring.currentKeyId, LEGACY_KEY_ID);
    assert.deepEqual([...ring.keys.keys()], [LEGACY_KEY_ID]);
    const all = await rows();
    assert.equal(all.size, WITH_OWN_SECRET);
    assert.deepEqual([...(await keyIdsInUse())], [LEGACY_KEY_ID]);
    assert.match(all.get(serial(1))!, /^v1\./);
    assert.match(all.get(serial(2))!, /^v2\.legacy\./);
    // Also fills the vending handler's key cache with the legacy-only keys.
    assert.equal((await vend(0, own(0))).status, 201);
  });

  it("--dry-run counts the rows to re-seal and changes nothing", async () => {
    const before = await rows();
    const { report } = await rotate("--dry-run");
    assert.equal(report.dryRun, true);
    assert.equal(report.created, true);
    assert.equal(report.resealed, WITH_OWN_SECRET);
    assert.deepEqual(await rows(), before);
    assert.equal((await stack.services.registryKeys.getRegistryKeys({ fresh: true })).keys.size, 1);
  });

  it("re-seals every device secret under a new key, makes it current, retires the legacy key; devices still vend", async () => {
    const { exitCode, report } = await rotate("--key-id", "rk-test-1", "--retire-after", "0");
    assert.equal(exitCode, 0);
    assert.equal(report.keyId, "rk-test-1");
    assert.equal(report.created, true);
    assert.equal(report.resealed, WITH_OWN_SECRET);
    assert.deepEqual(report.retiredKeyIds, [LEGACY_KEY_ID]);
    assert.deepEqual(report.unreadable, []);

    const ring = await stack.services.registryKeys.getRegistryKeys({ fresh: true });
    assert.equal(ring.currentKeyId, "rk-test-1");
    assert.deepEqual([...ring.keys.keys()], ["rk-test-1"], "the old key is gone: no row uses it");
    assert.deepEqual([...(await keyIdsInUse())], ["rk-test-1"]);
    for (const [serialNumber, sealed] of await rows()) {
      const i = Number(serialNumber.slice(3));
      assert.equal(openSecret(sealed, ring, serialNumber), own(i), "the same secret, re-sealed");
    }
    // The vending handler still holds the legacy-only keys in its cache: it must read them again.
    assert.equal((await vend(1, own(1))).status, 201, "the v1 row, re-sealed");
    assert.equal((await vend(2, own(2))).status, 201);
    assert.equal((await vend(35, "not-the-derived-secret")).status, 401);
  });

  it("a re-run with the same key id is a no-op", async () => {
    const before = await rows();
    const { report } = await rotate("--key-id", "rk-test-1", "--retire-after", "0");
    assert.equal(report.created, false);
    assert.equal(report.resealed, 0);
    assert.equal(report.alreadyCurrent, WITH_OWN_SECRET);
    assert.deepEqual(report.retiredKeyIds, []);
    assert.deepEqual(await rows(), before, "not one row rewritten");
  });

  it("never clobbers a row whose secret changes mid-rotation", async () => {
    const services = stack.services;
    const oldKeys = await services.registryKeys.getRegistryKeys({ fresh: true });
    const changed = serial(5);
    const newSecret = "changed-during-rotation-5";
    let interleaved = false;
    // The real rows adapter, with a concurrent writer that strikes between the read and the
    // conditional write of one row: it seals a new secret under the keys it cached (the old ones).
    const rowsWithRace: SealedSecretRows = {
      listSealedSecrets: () => services.sealedSecrets.listSealedSecrets(),
      async replaceSealedSecret(serialNumber, expected, next) {
        if (serialNumber === changed && !interleaved) {
          interleaved = true;
          const concurrent = sealSecret(newSecret, oldKeys, serialNumber);
          assert.ok(await services.sealedSecrets.replaceSealedSecret(serialNumber, expected, concurrent));
        }
        return services.sealedSecrets.replaceSealedSecret(serialNumber, expected, next);
      },
    };
    const report = await rotateRegistryKey(
      { keyStore: services.registryKeys, rows: rowsWithRace },
      { keyId: "rk-test-2", retireAfterMs: 0 },
    );
    assert.ok(interleaved);
    assert.equal(report.concurrentChanges, 1);
    assert.equal(report.resealed, WITH_OWN_SECRET, "the changed row was re-read and re-sealed");
    assert.deepEqual(report.retiredKeyIds, ["rk-test-1"]);

    const ring = await services.registryKeys.getRegistryKeys({ fresh: true });
    const sealed = (await rows()).get(changed)!;
    assert.equal(sealedKeyId(sealed), "rk-test-2");
    assert.equal(openSecret(sealed, ring, changed), newSecret, "the concurrent change survived");
    assert.equal((await vend(5, newSecret)).status, 201);
  });

  it("an interrupted rotation is finished by a plain re-run", async () => {
    const services = stack.services;
    let writes = 0;
    const crashing: SealedSecretRows = {
      listSealedSecrets: () => services.sealedSecrets.listSealedSecrets(),
      async replaceSealedSecret(serialNumber, expected, next) {
        if (++writes > 7) throw new Error("simulated crash");
        return services.sealedSecrets.replaceSealedSecret(serialNumber, expected, next);
      },
    };
    await assert.rejects(
      rotateRegistryKey({ keyStore: services.registryKeys, rows: crashing }, { retireAfterMs: 0 }),
      /simulated crash/,
    );
    const halfway = await services.registryKeys.getRegistryKeys({ fresh: true });
    const pending = halfway.pendingKeyId;
    assert.ok(pending?.startsWith("rk-"));
    assert.equal(halfway.currentKeyId, "rk-test-2", "not current before every row is re-sealed");
    assert.deepEqual([...(await keyIdsInUse())].sort(), [pending, "rk-test-2"].sort());
    // Devices vend meanwhile, whichever key their row is under.
    assert.equal((await vend(6, own(6))).status, 201);

    const { report } = await rotate("--retire-after", "0");
    assert.equal(report.keyId, pending);
    assert.equal(report.created, false);
    assert.equal(report.resealed, WITH_OWN_SECRET - 7);
    assert.deepEqual(report.retiredKeyIds, ["rk-test-2"]);
    assert.deepEqual([...(await keyIdsInUse())], [pending]);
    assert.equal((await vend(7, own(7))).status, 201);
  });

  it("keeps old keys until --retire-after has passed; a later run retires them", async () => {
    const first = await rotate("--key-id", "rk-test-4");
    assert.equal(first.report.resealed, WITH_OWN_SECRET);
    assert.ok(first.report.retireNotBefore);
    assert.equal(first.report.keptKeyIds.length, 1);
    assert.deepEqual([...(await keyIdsInUse())], ["rk-test-4"]);
    const second = await rotate("--retire-after", "0");
    assert.equal(second.report.keyId, "rk-test-4");
    assert.equal(second.report.resealed, 0);
    assert.deepEqual(second.report.retiredKeyIds, first.report.keptKeyIds);
    assert.deepEqual(
      [...(await stack.services.registryKeys.getRegistryKeys({ fresh: true })).keys.keys()],
      ["rk-test-4"],
    );
  });

  it("reports a row it cannot open, keeps its key, and exits 3", async () => {
    const all = await rows();
    const victim = serial(9);
    const parts = all.get(victim)!.split(".");
    parts[3] = Buffer.from("tampered-ciphertext").toString("base64url");
    assert.ok(
      await stack.services.sealedSecrets.replaceSealedSecret(victim, all.get(victim)!, parts.join(".")),
    );
    const { exitCode, report } = await rotate("--key-id", "rk-test-5", "--retire-after", "0");
    assert.equal(exitCode, 3);
    assert.deepEqual(
      report.unreadable.map((u) => u.serialNumber),
      [victim],
    );
    assert.deepEqual(report.keptKeyIds, ["rk-test-4"], "a row still names it");
    assert.equal(report.resealed, WITH_OWN_SECRET - 1);
  });

  it("documents itself in --help", () => {
    const registry = buildProgram().commands.find((c) => c.name() === "registry");
    const help = registry?.commands.find((c) => c.name() === "rotate-key")?.helpInformation() ?? "";
    for (const option of ["--key-id", "--dry-run", "--retire-after", "--json", "--endpoints"]) {
      assert.match(help, new RegExp(option));
    }
  });
});
