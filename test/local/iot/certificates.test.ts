import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DescribeCertificateCommand,
  DetachThingPrincipalCommand,
  ListCertificatesCommand,
  RegisterCertificateWithoutCACommand,
  UpdateCertificateCommand,
} from "@aws-sdk/client-iot";
import { parseCertificate } from "#core/pki/index.ts";
import {
  openssl,
  opensslCa,
  opensslCertificateId,
  opensslCsr,
  opensslSign,
  opensslVerify,
  tamperSignature,
} from "#test/core/pki/openssl.ts";
import { type EmulatorFixture, sdkError, startEmulator } from "./emulator-fixture.ts";

describe("IoT emulator: certificates", () => {
  let f: EmulatorFixture;
  before(async () => {
    f = await startEmulator({ region: "eu-central-1", accountId: "123456789012" });
  });
  after(() => f.stop());

  const createFromCsr = (csrPem: string, setAsActive?: boolean) =>
    f.client.send(
      new CreateCertificateFromCsrCommand({
        certificateSigningRequest: csrPem,
        ...(setAsActive === undefined ? {} : { setAsActive }),
      }),
    );

  it("CreateCertificateFromCsr signs openssl CSRs (EC P-256/P-384/P-521, RSA-2048) with the root CA", async () => {
    for (const key of ["ec:P-256", "ec:P-384", "ec:P-521", "rsa:2048"] as const) {
      const { csrPem } = opensslCsr(key, "/CN=SN-1");
      const created = await createFromCsr(csrPem, true);
      assert.ok(created.certificatePem && created.certificateId);
      assert.equal(created.certificateId, opensslCertificateId(created.certificatePem));
      assert.equal(
        created.certificateArn,
        `arn:aws:iot:eu-central-1:123456789012:cert/${created.certificateId}`,
      );
      assert.equal(opensslVerify(f.emulator.rootCaPem, created.certificatePem), true, key);
      const parsed = await parseCertificate(created.certificatePem);
      assert.equal(parsed.subject.commonName, "AWS IoT Certificate");
      assert.equal(parsed.notAfter.toISOString(), "2049-12-31T23:59:59.000Z");
    }
  });

  it("gives the same CSR two different certificates, INACTIVE unless setAsActive", async () => {
    const { csrPem } = opensslCsr("ec:P-256", "/CN=twice");
    const first = await createFromCsr(csrPem);
    const second = await createFromCsr(csrPem);
    assert.notEqual(first.certificateId, second.certificateId);
    const described = await f.client.send(
      new DescribeCertificateCommand({ certificateId: first.certificateId }),
    );
    assert.equal(described.certificateDescription?.status, "INACTIVE");
    assert.equal(described.certificateDescription?.certificatePem, first.certificatePem);
    assert.equal(described.certificateDescription?.ownedBy, "123456789012");
    assert.equal(described.certificateDescription?.certificateMode, "DEFAULT");
    assert.ok(described.certificateDescription?.creationDate instanceof Date);
    assert.equal(
      described.certificateDescription?.validity?.notAfter?.toISOString(),
      "2049-12-31T23:59:59.000Z",
    );
  });

  it("refuses bad CSRs with InvalidRequestException", async () => {
    for (const csr of [
      "not a csr",
      opensslCsr("rsa:1024", "/CN=weak").csrPem,
      tamperSignature(opensslCsr("ec:P-256", "/CN=tampered").csrPem),
    ]) {
      const error = await sdkError(createFromCsr(csr), "InvalidRequestException");
      assert.equal(error.$metadata?.httpStatusCode, 400);
    }
  });

  it("CreateKeysAndCertificate returns an RSA key pair that matches the certificate", async () => {
    const created = await f.client.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
    const privateKey = created.keyPair?.PrivateKey ?? "";
    assert.match(privateKey, /^-----BEGIN RSA PRIVATE KEY-----/);
    const fromKey = openssl(["pkey", "-pubout"], { input: privateKey }).stdout.toString();
    const fromCert = openssl(["x509", "-noout", "-pubkey"], {
      input: created.certificatePem ?? "",
    }).stdout.toString();
    assert.equal(fromKey, fromCert);
    assert.equal(created.keyPair?.PublicKey, fromKey);
    assert.equal(f.emulator.state.certificate(created.certificateId ?? "")?.status, "ACTIVE");
  });

  it("UpdateCertificate follows AWS IoT's status rules", async () => {
    const { certificateId } = await createFromCsr(opensslCsr("ec:P-256", "/CN=u").csrPem);
    const update = (newStatus: string) =>
      f.client.send(new UpdateCertificateCommand({ certificateId, newStatus: newStatus as never }));
    await update("ACTIVE");
    assert.equal(f.emulator.state.certificate(certificateId!)?.status, "ACTIVE");
    await update("INACTIVE");
    await sdkError(update("PENDING_ACTIVATION"), "InvalidRequestException");
    await sdkError(update("SOMETHING"), "InvalidRequestException");
    await update("REVOKED");
    const error = await sdkError(update("ACTIVE"), "CertificateStateException");
    assert.equal(error.$metadata?.httpStatusCode, 406);
    await sdkError(
      f.client.send(new UpdateCertificateCommand({ certificateId: "0".repeat(64), newStatus: "ACTIVE" })),
      "ResourceNotFoundException",
    );
    await sdkError(
      f.client.send(new DescribeCertificateCommand({ certificateId: "not-hex" })),
      "InvalidRequestException",
    );
  });

  it("DeleteCertificate refuses active or attached certificates, as AWS IoT does", async () => {
    const { certificateId, certificateArn } = await createFromCsr(
      opensslCsr("ec:P-256", "/CN=d").csrPem,
      true,
    );
    const remove = (forceDelete?: boolean) =>
      f.client.send(new DeleteCertificateCommand({ certificateId, ...(forceDelete ? { forceDelete } : {}) }));
    await sdkError(remove(), "CertificateStateException");
    await f.client.send(new UpdateCertificateCommand({ certificateId, newStatus: "INACTIVE" }));
    await f.client.send(new CreateThingCommand({ thingName: "delete-me" }));
    await f.client.send(
      new AttachThingPrincipalCommand({ thingName: "delete-me", principal: certificateArn }),
    );
    await sdkError(remove(true), "DeleteConflictException");
    await f.client.send(
      new DetachThingPrincipalCommand({ thingName: "delete-me", principal: certificateArn }),
    );
    await f.client.send(
      new CreatePolicyCommand({
        policyName: "p-delete",
        policyDocument: '{"Version":"2012-10-17","Statement":[]}',
      }),
    );
    await f.client.send(new AttachPolicyCommand({ policyName: "p-delete", target: certificateArn }));
    await sdkError(remove(), "DeleteConflictException");
    await remove(true);
    assert.equal(f.emulator.state.certificate(certificateId!), undefined);
    assert.deepEqual(f.emulator.state.policyTargets("p-delete"), []);
    await sdkError(remove(), "ResourceNotFoundException");
  });

  it("ListCertificates pages newest first, or oldest first on request", async () => {
    const fixture = await startEmulator();
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { certificateId } = await fixture.client.send(
          new CreateCertificateFromCsrCommand({
            certificateSigningRequest: opensslCsr("ec:P-256", `/CN=l${i}`).csrPem,
          }),
        );
        ids.push(certificateId!);
      }
      const seen: string[] = [];
      let marker: string | undefined;
      do {
        const page = await fixture.client.send(
          new ListCertificatesCommand({ pageSize: 2, ...(marker ? { marker } : {}) }),
        );
        assert.ok((page.certificates?.length ?? 0) <= 2);
        seen.push(...(page.certificates ?? []).map((c) => c.certificateId!));
        marker = page.nextMarker;
      } while (marker);
      assert.deepEqual(seen, [...ids].reverse());
      const ascending = await fixture.client.send(new ListCertificatesCommand({ ascendingOrder: true }));
      assert.deepEqual(
        ascending.certificates?.map((c) => c.certificateId),
        ids,
      );
      await sdkError(
        fixture.client.send(new ListCertificatesCommand({ pageSize: 1000 })),
        "InvalidRequestException",
      );
    } finally {
      await fixture.stop();
    }
  });

  it("RegisterCertificateWithoutCA registers any valid certificate in SNI_ONLY mode", async () => {
    const ca = opensslCa("/CN=Unregistered CA");
    const pem = opensslSign(opensslCsr("ec:P-256", "/CN=no-ca").csrPem, ca);
    const registered = await f.client.send(
      new RegisterCertificateWithoutCACommand({ certificatePem: pem, status: "ACTIVE" }),
    );
    assert.equal(registered.certificateId, opensslCertificateId(pem));
    const record = f.emulator.state.certificate(registered.certificateId!);
    assert.equal(record?.certificateMode, "SNI_ONLY");
    assert.equal(record?.status, "ACTIVE");
    assert.equal(record?.caCertificateId, undefined);
    await sdkError(
      f.client.send(new RegisterCertificateWithoutCACommand({ certificatePem: pem })),
      "ResourceAlreadyExistsException",
    );
    await sdkError(
      f.client.send(new RegisterCertificateWithoutCACommand({ certificatePem: "junk" })),
      "CertificateValidationException",
    );
  });
});
