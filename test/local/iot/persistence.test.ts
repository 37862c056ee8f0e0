import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  DescribeCertificateCommand,
  GetRegistrationCodeCommand,
  ListThingPrincipalsCommand,
} from "@aws-sdk/client-iot";
import { createIotEmulator } from "#local/iot/index.ts";
import { opensslCsr } from "#test/core/pki/openssl.ts";
import { startEmulator, temporaryDir } from "./emulator-fixture.ts";

describe("IoT emulator: persistence", () => {
  it("keeps the registry, the registration code and the root CA across a restart", async () => {
    const dir = temporaryDir();
    try {
      const first = await startEmulator({ dataDir: dir.path });
      const code = (await first.client.send(new GetRegistrationCodeCommand({}))).registrationCode;
      const cert = await first.client.send(
        new CreateCertificateFromCsrCommand({
          certificateSigningRequest: opensslCsr("ec:P-256", "/CN=keep").csrPem,
          setAsActive: true,
        }),
      );
      await first.client.send(
        new CreateThingCommand({ thingName: "kept", attributePayload: { attributes: { a: "1" } } }),
      );
      await first.client.send(
        new AttachThingPrincipalCommand({ thingName: "kept", principal: cert.certificateArn }),
      );
      await first.client.send(
        new CreatePolicyCommand({ policyName: "kept-policy", policyDocument: '{"Statement":[]}' }),
      );
      const rootCaPem = first.emulator.rootCaPem;
      await first.stop();

      assert.equal(statSync(join(dir.path, "root-ca.key")).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir.path, "iot-state.json")).mode & 0o777, 0o600);
      assert.equal(readFileSync(join(dir.path, "root-ca.pem"), "utf8"), rootCaPem);

      const second = await startEmulator({ dataDir: dir.path });
      try {
        assert.equal(second.emulator.rootCaPem, rootCaPem);
        assert.equal((await second.client.send(new GetRegistrationCodeCommand({}))).registrationCode, code);
        const described = await second.client.send(
          new DescribeCertificateCommand({ certificateId: cert.certificateId }),
        );
        assert.equal(described.certificateDescription?.status, "ACTIVE");
        const principals = await second.client.send(new ListThingPrincipalsCommand({ thingName: "kept" }));
        assert.deepEqual(principals.principals, [cert.certificateArn]);
        assert.equal(second.emulator.state.policy("kept-policy")?.policyDocument, '{"Statement":[]}');
      } finally {
        await second.stop();
      }
    } finally {
      dir.remove();
    }
  });

  it("journals in-process writes, compacts the journal into the snapshot, and replays both", async () => {
    const dir = temporaryDir();
    const policy = (i: number) => ({
      policyName: `p${i}`,
      policyArn: `arn:aws:iot:us-east-1:000000000000:policy/p${i}`,
      policyDocument: "{}",
      defaultVersionId: "1",
      creationDate: 0,
      lastModifiedDate: 0,
      generationId: "g",
    });
    try {
      // A tiny compaction threshold: the journal is folded into the snapshot many times over.
      const emulator = await createIotEmulator({ dataDir: dir.path, journalCompactBytes: 512 });
      for (let i = 0; i < 200; i++) {
        emulator.state.insertPolicy(policy(i));
        if (i % 3 === 0) await emulator.flush();
      }
      for (let i = 0; i < 200; i += 2) emulator.state.deletePolicy(`p${i}`);
      await emulator.flush();
      const journals = readdirSync(dir.path).filter((name) => name.startsWith("iot-journal."));
      assert.equal(journals.length, 1, `old journals are removed after compaction: ${journals}`);
      const saved = JSON.parse(readFileSync(join(dir.path, "iot-state.json"), "utf8")) as { journal: number };
      assert.ok(saved.journal > 1, "the journal was compacted while running");
      assert.equal(statSync(join(dir.path, journals[0] ?? "")).mode & 0o777, 0o600);
      // No close(): what flush() acknowledged must be there without an orderly shutdown.

      const again = await createIotEmulator({ dataDir: dir.path });
      try {
        assert.deepEqual(
          again.state.listPolicies().map((p) => p.policyName),
          Array.from({ length: 100 }, (_, i) => `p${2 * i + 1}`),
        );
      } finally {
        await again.close();
        await emulator.close();
      }
    } finally {
      dir.remove();
    }
  });

  it("drops a torn last journal line (an append cut by a crash) and refuses a broken line before it", async () => {
    const dir = temporaryDir();
    try {
      const emulator = await createIotEmulator({ dataDir: dir.path });
      await emulator.close();
      const journal = readdirSync(dir.path).find((name) => name.startsWith("iot-journal.")) ?? "";
      const put = (name: string) =>
        JSON.stringify([
          {
            op: "put",
            collection: "things",
            key: name,
            record: { thingName: name, attributes: {}, version: 1 },
          },
        ]);
      writeFileSync(join(dir.path, journal), `${put("whole")}\n${put("torn").slice(0, 30)}`);
      const recovered = await createIotEmulator({ dataDir: dir.path });
      assert.deepEqual(
        recovered.state.listThings().map((t) => t.thingName),
        ["whole"],
      );
      await recovered.close();

      const next = readdirSync(dir.path).find((name) => name.startsWith("iot-journal.")) ?? "";
      writeFileSync(join(dir.path, next), `{ broken\n${put("after")}\n`);
      await assert.rejects(createIotEmulator({ dataDir: dir.path }), /line 1 is not a journal entry/);
    } finally {
      dir.remove();
    }
  });

  it("refuses to start on a corrupt state file instead of silently starting empty", async () => {
    const dir = temporaryDir();
    try {
      writeFileSync(join(dir.path, "iot-state.json"), "{ truncated");
      await assert.rejects(
        createIotEmulator({ dataDir: dir.path }),
        /iot-state\.json is not a readable IoT emulator state file/,
      );
    } finally {
      dir.remove();
    }
  });
});
