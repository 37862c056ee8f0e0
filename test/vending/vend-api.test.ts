import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DescribeCertificateCommand,
  DescribeThingCommand,
  ListAttachedPoliciesCommand,
  ListCertificatesCommand,
  ListThingGroupsForThingCommand,
  ListThingPrincipalsCommand,
} from "@aws-sdk/client-iot";
import { buildVendBody, requestCertificate } from "#cli/device/vend-client.ts";
import { createCsr, createKeyPair } from "#core/pki/issue.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

describe("POST /v1/certificates against the local stack", () => {
  let stack: Stack;
  let csrProduct: Awaited<ReturnType<typeof seedProduct>>;
  let serverProduct: Awaited<ReturnType<typeof seedProduct>>;
  const serials = Array.from({ length: 20 }, (_, i) => `SN-${String(i).padStart(4, "0")}`);

  before(async () => {
    stack = await startTestStack();
    csrProduct = await seedProduct(stack.services, { productKey: "csr-only", name: "CSR product" }, serials);
    serverProduct = await seedProduct(
      stack.services,
      {
        productKey: "server-ok",
        name: "Server keys",
        allowServerKeys: true,
        authMode: "device-secret",
        reprovision: "replace",
      },
      ["SRV-1", "SRV-2"],
    );
  });
  after(() => stack.stop());

  const vend = (serial: string, extra: Partial<Parameters<typeof requestCertificate>[0]> = {}) =>
    requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: "csr-only",
      secret: csrProduct.secretFor(serial),
      keyMode: "csr",
      ...extra,
    });

  const post = (body: string) =>
    fetch(`${stack.endpoints.api}/v1/certificates`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });

  it("vends a certificate for an openssl CSR that openssl verifies against the returned root CA", async () => {
    const { csrPem } = opensslCsr("SN-0000");
    const res = await vend("SN-0000", { csr: csrPem });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const body = res.body as Record<string, string>;
    assert.match(body.certificateId!, /^[0-9a-f]{64}$/);
    assert.equal(body.thingName, "SN-0000");
    assert.equal(body.privateKeyPem, undefined);
    assert.match(body.mqttEndpoint!, /localhost:\d+/);

    const dir = mkdtempSync(join(tmpdir(), "onramp-verify-"));
    try {
      writeFileSync(join(dir, "ca.pem"), body.rootCaPem!);
      writeFileSync(join(dir, "device.crt"), body.certificatePem!);
      const out = execFileSync("openssl", [
        "verify",
        "-CAfile",
        join(dir, "ca.pem"),
        join(dir, "device.crt"),
      ]).toString();
      assert.match(out, /device\.crt: OK/);
      const der = execFileSync("openssl", ["x509", "-in", join(dir, "device.crt"), "-outform", "DER"]);
      const sha = execFileSync("sha256sum", { input: der }).toString().split(" ")[0];
      assert.equal(sha, body.certificateId);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    const described = await stack.iotClient.send(
      new DescribeCertificateCommand({ certificateId: body.certificateId }),
    );
    assert.equal(described.certificateDescription?.status, "ACTIVE");
    const arn = body.certificateArn!;
    // The direct path (the default template): no policy on the certificate; the device policy
    // comes from the product's thing group, which the thing is in.
    const policies = await stack.iotClient.send(new ListAttachedPoliciesCommand({ target: arn }));
    assert.deepEqual(policies.policies ?? [], []);
    const groups = await stack.iotClient.send(new ListThingGroupsForThingCommand({ thingName: "SN-0000" }));
    assert.deepEqual(
      groups.thingGroups?.map((g) => g.groupName),
      ["onramp-product-csr-only"],
    );
    const groupPolicies = await stack.iotClient.send(
      new ListAttachedPoliciesCommand({ target: groups.thingGroups![0]!.groupArn! }),
    );
    assert.deepEqual(
      groupPolicies.policies?.map((p) => p.policyName),
      ["onramp-device-policy"],
    );
    const thing = await stack.iotClient.send(new DescribeThingCommand({ thingName: "SN-0000" }));
    assert.equal(thing.attributes?.productKey, "csr-only");
    const principals = await stack.iotClient.send(new ListThingPrincipalsCommand({ thingName: "SN-0000" }));
    assert.deepEqual(principals.principals, [arn]);

    const device = await stack.services.registry.getDevice("SN-0000");
    assert.equal(device?.status, "provisioned");
    assert.equal(device?.certificateId, body.certificateId);
    assert.equal(device?.claim, undefined);
  });

  it("answers a retry with the same CSR key with the same certificate (lost response)", async () => {
    const { privateKeyPem } = await createKeyPair("EC-P256");
    const csr = await createCsr({ privateKeyPem, subject: { commonName: "SN-0001" } });
    const first = await vend("SN-0001", { csr });
    assert.equal(first.status, 201);
    const again = await createCsr({ privateKeyPem, subject: { commonName: "SN-0001" } });
    const second = await vend("SN-0001", { csr: again });
    assert.equal(second.status, 200);
    assert.equal(second.body.certificateId, first.body.certificateId);
    assert.equal(second.body.replayed, true);
  });

  it("refuses a second provisioning with another key under the `never` policy (409)", async () => {
    assert.equal((await vend("SN-0002", { csr: opensslCsr("SN-0002").csrPem })).status, 201);
    const res = await vend("SN-0002", { csr: opensslCsr("SN-0002").csrPem });
    assert.equal(res.status, 409);
    assert.deepEqual((res.body.error as { code: string }).code, "ALREADY_PROVISIONED");
  });

  it("accepts EC P-384 and RSA-2048 CSRs and refuses RSA-1024 (400)", async () => {
    assert.equal((await vend("SN-0003", { csr: opensslCsr("SN-0003", "ec-p384").csrPem })).status, 201);
    assert.equal((await vend("SN-0004", { csr: opensslCsr("SN-0004", "rsa-2048").csrPem })).status, 201);
    const weak = await vend("SN-0005", { csr: opensslCsr("SN-0005", "rsa-1024").csrPem });
    assert.equal(weak.status, 400);
    assert.equal((await stack.services.registry.getDevice("SN-0005"))?.status, "registered");
  });

  it("refuses a CSR whose subject is not the serial number, and a CSR with a broken signature (400)", async () => {
    const other = await vend("SN-0006", { csr: opensslCsr("SOMEONE-ELSE").csrPem });
    assert.equal(other.status, 400);
    assert.match((other.body.error as { message: string }).message, /common name/);
    const { csrPem } = opensslCsr("SN-0006");
    const lines = csrPem.trim().split("\n");
    const i = lines.length - 3;
    lines[i] = lines[i]!.replace(/[A-Za-z]/, (c) => (c === "A" ? "B" : "A"));
    const broken = await vend("SN-0006", { csr: `${lines.join("\n")}\n` });
    assert.equal(broken.status, 400);
  });

  it("vends a server-made key only where the product allows it", async () => {
    const ok = await requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: "SRV-1",
      productKey: "server-ok",
      secret: serverProduct.secretFor("SRV-1"),
      keyMode: "server",
    });
    assert.equal(ok.status, 201);
    assert.match(String(ok.body.privateKeyPem), /PRIVATE KEY/);
    const refused = await vend("SN-0007", { keyMode: "server" });
    assert.equal(refused.status, 400);
  });

  it("replaces the certificate under the `replace` policy and revokes the old one", async () => {
    const call = () =>
      requestCertificate({
        apiUrl: stack.endpoints.api,
        serialNumber: "SRV-2",
        productKey: "server-ok",
        secret: serverProduct.secretFor("SRV-2"),
        keyMode: "server",
      });
    const first = await call();
    const second = await call();
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.notEqual(first.body.certificateId, second.body.certificateId);
    await assert.rejects(
      stack.iotClient.send(
        new DescribeCertificateCommand({ certificateId: String(first.body.certificateId) }),
      ),
      /ResourceNotFound/,
    );
  });

  it("rejects a bad signature, a stale timestamp and a reused nonce with 401", async () => {
    const csr = opensslCsr("SN-0008").csrPem;
    const bad = await vend("SN-0008", { csr, secret: "not-the-secret" });
    assert.equal(bad.status, 401);
    assert.equal((bad.body.error as { code: string }).code, "BAD_SIGNATURE");
    const stale = await vend("SN-0008", { csr, timestamp: Date.now() - 10 * 60_000 });
    assert.equal((stale.body.error as { code: string }).code, "STALE_TIMESTAMP");
    const body = JSON.stringify(
      buildVendBody({
        serialNumber: "SN-0008",
        productKey: "csr-only",
        secret: csrProduct.secretFor("SN-0008"),
        keyMode: "csr",
        csr,
      }),
    );
    assert.equal((await post(body)).status, 201);
    const replay = await post(body);
    assert.equal(replay.status, 401);
    assert.equal(((await replay.json()) as { error: { code: string } }).error.code, "NONCE_REUSED");
  });

  it("gives unknown, disabled and revoked serials the same 403", async () => {
    await stack.services.registry.setDeviceStatus("SN-0009", "disabled", { from: ["registered"] });
    await stack.services.registry.setDeviceStatus("SN-0010", "revoked", { from: ["registered"] });
    const bodies = [];
    for (const serial of ["NOT-IN-REGISTRY", "SN-0009", "SN-0010"]) {
      const res = await vend(serial, { csr: opensslCsr(serial).csrPem });
      assert.equal(res.status, 403, serial);
      bodies.push(JSON.stringify(res.body));
    }
    assert.equal(new Set(bodies).size, 1);
  });

  it("answers malformed input with 400 and oversized bodies with 413", async () => {
    assert.equal((await post("{not json")).status, 400);
    assert.equal((await post("[]")).status, 400);
    assert.equal((await post(JSON.stringify({ serialNumber: "SN-0011" }))).status, 400);
    const big = await post(JSON.stringify({ csr: "x".repeat(17 * 1024) }));
    assert.equal(big.status, 413);
    const res = await post('{"serialNumber": 5}');
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "INVALID_REQUEST");
    assert.match(body.error.message, /serialNumber/);
  });

  it("gives 50 concurrent requests for one serial exactly one certificate", async () => {
    const before = await countCertificates(stack);
    const csrs = await Promise.all(
      Array.from({ length: 50 }, async () =>
        createCsr({
          privateKeyPem: (await createKeyPair("EC-P256")).privateKeyPem,
          subject: { commonName: "SN-0012" },
        }),
      ),
    );
    const results = await Promise.all(csrs.map((csr) => vend("SN-0012", { csr })));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 1, statuses.join(","));
    assert.ok(
      statuses.every((s) => s === 201 || s === 409),
      statuses.join(","),
    );
    assert.equal((await countCertificates(stack)) - before, 1);
  });
});

async function countCertificates(stack: Stack): Promise<number> {
  let count = 0;
  let marker: string | undefined;
  do {
    const page = await stack.iotClient.send(
      new ListCertificatesCommand({ pageSize: 250, ...(marker ? { marker } : {}) }),
    );
    count += page.certificates?.length ?? 0;
    marker = page.nextMarker;
  } while (marker);
  return count;
}
