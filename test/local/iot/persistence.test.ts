import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
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

  it("coalesces many changes into few writes and flushes on close", async () => {
    const dir = temporaryDir();
    try {
      const emulator = await createIotEmulator({ dataDir: dir.path });
      for (let i = 0; i < 200; i++) {
        emulator.state.insertPolicy({
          policyName: `p${i}`,
          policyArn: `arn:aws:iot:us-east-1:000000000000:policy/p${i}`,
          policyDocument: "{}",
          defaultVersionId: "1",
          creationDate: 0,
          lastModifiedDate: 0,
          generationId: "g",
        });
      }
      await emulator.close();
      const saved = JSON.parse(readFileSync(join(dir.path, "iot-state.json"), "utf8")) as {
        policies: unknown[];
      };
      assert.equal(saved.policies.length, 200);
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
