import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  DescribeCertificateCommand,
  DescribeThingCommand,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
  UpdateCertificateCommand,
} from "@aws-sdk/client-iot";
import { opensslCsr } from "#test/core/pki/openssl.ts";
import { iotClient, temporaryDir } from "./emulator-fixture.ts";

const serveScript = fileURLToPath(new URL("../../../local/iot/serve.ts", import.meta.url));

/** The emulator alone in its own process (`local/iot/serve.ts`), on a free port. */
async function startEmulatorProcess(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", serveScript, "--port", "0", "--data-dir", dataDir],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const found = /AWS IoT emulator on (http:\/\/\S+)/.exec(output);
      if (found?.[1]) resolve(found[1]);
    });
    child.once("exit", (code) => reject(new Error(`the emulator exited (${code}): ${output}`)));
  });
  return { child, url };
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  const [code, signal] = await exited;
  assert.equal(signal, "SIGKILL", `the emulator exited on its own (code ${code})`);
}

describe("IoT emulator: crash consistency", () => {
  it("keeps every acknowledged write after kill -9 (certificates, things, attachments, status)", async () => {
    const dir = temporaryDir();
    const csrs = Array.from({ length: 4 }, (_, i) => opensslCsr("ec:P-256", `/CN=crash-csr-${i}`).csrPem);
    try {
      const first = await startEmulatorProcess(dir.path);
      const client = iotClient(first.url);
      const acknowledged: Array<{ certificateId: string; certificateArn: string; thingName: string }> = [];
      try {
        await client.send(
          new CreatePolicyCommand({ policyName: "crash-policy", policyDocument: '{"Statement":[]}' }),
        );
        // Concurrent devices, each one the vending flow's writes, answered one by one.
        await Promise.all(
          Array.from({ length: 24 }, async (_, i) => {
            const csr = csrs[i];
            const created = csr
              ? await client.send(new CreateCertificateFromCsrCommand({ certificateSigningRequest: csr }))
              : await client.send(new CreateKeysAndCertificateCommand({}));
            const certificateId = created.certificateId ?? "";
            const certificateArn = created.certificateArn ?? "";
            const thingName = `crash-thing-${i}`;
            await client.send(new CreateThingCommand({ thingName }));
            await client.send(new AttachThingPrincipalCommand({ thingName, principal: certificateArn }));
            await client.send(
              new AttachPolicyCommand({ policyName: "crash-policy", target: certificateArn }),
            );
            await client.send(new UpdateCertificateCommand({ certificateId, newStatus: "ACTIVE" }));
            acknowledged.push({ certificateId, certificateArn, thingName });
          }),
        );
      } finally {
        client.destroy();
      }
      await killHard(first.child); // right after the last answer

      const second = await startEmulatorProcess(dir.path);
      const reader = iotClient(second.url);
      try {
        assert.equal(acknowledged.length, 24);
        for (const { certificateId, certificateArn, thingName } of acknowledged) {
          const described = await reader.send(new DescribeCertificateCommand({ certificateId }));
          assert.equal(described.certificateDescription?.status, "ACTIVE", certificateId);
          assert.equal((await reader.send(new DescribeThingCommand({ thingName }))).thingName, thingName);
          const principals = await reader.send(new ListThingPrincipalsCommand({ thingName }));
          assert.deepEqual(principals.principals, [certificateArn]);
          const policies = await reader.send(new ListAttachedPoliciesCommand({ target: certificateArn }));
          assert.deepEqual(
            policies.policies?.map((p) => p.policyName),
            ["crash-policy"],
          );
        }
      } finally {
        reader.destroy();
        await killHard(second.child);
      }
    } finally {
      dir.remove();
    }
  });
});
