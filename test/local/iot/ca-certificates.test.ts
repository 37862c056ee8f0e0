import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  DeleteCACertificateCommand,
  DescribeCACertificateCommand,
  GetRegistrationCodeCommand,
  ListCACertificatesCommand,
  ListCertificatesByCACommand,
  RegisterCACertificateCommand,
  RegisterCertificateCommand,
  UpdateCACertificateCommand,
} from "@aws-sdk/client-iot";
import { IotServiceError } from "#local/iot/index.ts";
import { opensslCa, opensslCertificateId, opensslCsr, opensslSign } from "#test/core/pki/openssl.ts";
import { type EmulatorFixture, sdkError, startEmulator } from "./emulator-fixture.ts";

type Ca = ReturnType<typeof opensslCa>;

describe("IoT emulator: CA certificates", () => {
  let f: EmulatorFixture;
  let code: string;
  before(async () => {
    f = await startEmulator();
    code = (await f.client.send(new GetRegistrationCodeCommand({}))).registrationCode!;
  });
  after(() => f.stop());

  /** What an operator does: a certificate with CN = registration code, signed by the CA's key. */
  const verificationCertificate = (ca: Ca, commonName = code) =>
    opensslSign(opensslCsr("ec:P-256", `/CN=${commonName}`).csrPem, ca);

  const register = (
    ca: Ca,
    verification: string,
    extra: { setAsActive?: boolean; allowAutoRegistration?: boolean } = {},
  ) =>
    f.client.send(
      new RegisterCACertificateCommand({
        caCertificate: ca.certPem,
        verificationCertificate: verification,
        ...extra,
      }),
    );

  it("GetRegistrationCode is stable", async () => {
    assert.match(code, /^[0-9a-f]{64}$/);
    const again = await f.client.send(new GetRegistrationCodeCommand({}));
    assert.equal(again.registrationCode, code);
  });

  it("registers a CA whose verification certificate has CN = the registration code", async () => {
    const ca = opensslCa("/O=Acme/CN=Acme Factory CA");
    const registered = await register(ca, verificationCertificate(ca), {
      setAsActive: true,
      allowAutoRegistration: true,
    });
    assert.equal(registered.certificateId, opensslCertificateId(ca.certPem));
    assert.equal(
      registered.certificateArn,
      `arn:aws:iot:us-east-1:000000000000:cacert/${registered.certificateId}`,
    );
    const described = await f.client.send(
      new DescribeCACertificateCommand({ certificateId: registered.certificateId }),
    );
    assert.equal(described.certificateDescription?.status, "ACTIVE");
    assert.equal(described.certificateDescription?.autoRegistrationStatus, "ENABLE");
    assert.equal(described.certificateDescription?.certificatePem, ca.certPem);
    const again = await sdkError(register(ca, verificationCertificate(ca)), "ResourceAlreadyExistsException");
    assert.equal((again as Error & { resourceId?: string }).resourceId, registered.certificateId);
  });

  it("refuses a verification certificate with the wrong CN or signed by another key", async () => {
    const ca = opensslCa("/CN=Refused CA");
    await sdkError(
      register(ca, verificationCertificate(ca, "not-the-code")),
      "RegistrationCodeValidationException",
    );
    const impostor = opensslCa("/CN=Refused CA");
    await sdkError(register(ca, verificationCertificate(impostor)), "CertificateValidationException");
    await sdkError(
      f.client.send(new RegisterCACertificateCommand({ caCertificate: ca.certPem })),
      "InvalidRequestException",
    );
    await sdkError(
      register({ ...ca, certPem: "garbage" }, verificationCertificate(ca)),
      "CertificateValidationException",
    );
    assert.equal(f.emulator.state.caCertificate(opensslCertificateId(ca.certPem)), undefined);
  });

  it("registers an SNI_ONLY CA without a verification certificate", async () => {
    const ca = opensslCa("/CN=SNI CA");
    const registered = await f.client.send(
      new RegisterCACertificateCommand({ caCertificate: ca.certPem, certificateMode: "SNI_ONLY" }),
    );
    assert.equal(f.emulator.state.caCertificate(registered.certificateId!)?.certificateMode, "SNI_ONLY");
  });

  it("stores the JITP registration config and updates status and auto-registration", async () => {
    const ca = opensslCa("/CN=JITP CA");
    const templateBody = JSON.stringify({ Resources: {} });
    const roleArn = "arn:aws:iam::000000000000:role/JITPRole";
    const { certificateId } = await f.client.send(
      new RegisterCACertificateCommand({
        caCertificate: ca.certPem,
        verificationCertificate: verificationCertificate(ca),
        registrationConfig: { templateBody, roleArn },
      }),
    );
    let described = await f.client.send(new DescribeCACertificateCommand({ certificateId }));
    assert.deepEqual(described.registrationConfig, { templateBody, roleArn });
    assert.equal(described.certificateDescription?.status, "INACTIVE");
    assert.equal(described.certificateDescription?.autoRegistrationStatus, "DISABLE");

    await f.client.send(
      new UpdateCACertificateCommand({
        certificateId,
        newStatus: "ACTIVE",
        newAutoRegistrationStatus: "ENABLE",
      }),
    );
    described = await f.client.send(new DescribeCACertificateCommand({ certificateId }));
    assert.equal(described.certificateDescription?.status, "ACTIVE");
    assert.equal(described.certificateDescription?.autoRegistrationStatus, "ENABLE");
    await f.client.send(new UpdateCACertificateCommand({ certificateId, removeAutoRegistration: true }));
    described = await f.client.send(new DescribeCACertificateCommand({ certificateId }));
    assert.equal(described.registrationConfig, undefined);

    await sdkError(
      f.client.send(new DeleteCACertificateCommand({ certificateId })),
      "CertificateStateException",
    );
    await f.client.send(new UpdateCACertificateCommand({ certificateId, newStatus: "INACTIVE" }));
    await f.client.send(new DeleteCACertificateCommand({ certificateId }));
    await sdkError(
      f.client.send(new DescribeCACertificateCommand({ certificateId })),
      "ResourceNotFoundException",
    );
  });

  it("ListCACertificates lists registered CAs", async () => {
    const listed = await f.client.send(new ListCACertificatesCommand({ ascendingOrder: true }));
    const ids = listed.certificates?.map((c) => c.certificateId) ?? [];
    assert.deepEqual(
      ids,
      f.emulator.state.listCaCertificates().map((c) => c.certificateId),
    );
    assert.ok(ids.length >= 2);
  });

  describe("RegisterCertificate", () => {
    let ca: Ca;
    let caId: string;
    before(async () => {
      ca = opensslCa("/CN=Device CA");
      caId = (
        await register(ca, verificationCertificate(ca), { setAsActive: true, allowAutoRegistration: true })
      ).certificateId!;
    });

    it("registers a device certificate signed by a registered CA, with or without the CA PEM", async () => {
      const first = opensslSign(opensslCsr("ec:P-256", "/CN=dev-a").csrPem, ca);
      const withCa = await f.client.send(
        new RegisterCertificateCommand({
          certificatePem: first,
          caCertificatePem: ca.certPem,
          status: "ACTIVE",
        }),
      );
      assert.equal(withCa.certificateId, opensslCertificateId(first));
      const record = f.emulator.state.certificate(withCa.certificateId!);
      assert.equal(record?.caCertificateId, caId);
      assert.equal(record?.status, "ACTIVE");

      const second = opensslSign(opensslCsr("rsa:2048", "/CN=dev-b").csrPem, ca);
      const found = await f.client.send(new RegisterCertificateCommand({ certificatePem: second }));
      assert.equal(f.emulator.state.certificate(found.certificateId!)?.status, "INACTIVE");
      assert.equal(f.emulator.state.certificate(found.certificateId!)?.caCertificateId, caId);

      const byCa = await f.client.send(new ListCertificatesByCACommand({ caCertificateId: caId }));
      assert.deepEqual(
        new Set(byCa.certificates?.map((c) => c.certificateId)),
        new Set([withCa.certificateId, found.certificateId]),
      );
      await sdkError(
        f.client.send(new RegisterCertificateCommand({ certificatePem: first })),
        "ResourceAlreadyExistsException",
      );
    });

    it("refuses certificates of unregistered CAs or not signed by the given CA", async () => {
      const stranger = opensslCa("/CN=Stranger CA");
      const pem = opensslSign(opensslCsr("ec:P-256", "/CN=dev-x").csrPem, stranger);
      await sdkError(
        f.client.send(new RegisterCertificateCommand({ certificatePem: pem })),
        "CertificateValidationException",
      );
      await sdkError(
        f.client.send(
          new RegisterCertificateCommand({ certificatePem: pem, caCertificatePem: stranger.certPem }),
        ),
        "CertificateValidationException",
      );
      await sdkError(
        f.client.send(new RegisterCertificateCommand({ certificatePem: pem, caCertificatePem: ca.certPem })),
        "CertificateValidationException",
      );
      await sdkError(
        f.client.send(new RegisterCertificateCommand({ certificatePem: "junk" })),
        "CertificateValidationException",
      );
    });

    it("JITR: registerCertificateFromCa registers PENDING_ACTIVATION once, then returns the same record", async () => {
      const pem = opensslSign(opensslCsr("ec:P-256", "/CN=jitr-1").csrPem, ca);
      const first = await f.emulator.registerCertificateFromCa(pem);
      assert.equal(first.created, true);
      assert.equal(first.certificate.status, "PENDING_ACTIVATION");
      assert.equal(first.certificate.caCertificateId, caId);
      const second = await f.emulator.registerCertificateFromCa(pem);
      assert.equal(second.created, false);
      assert.equal(second.certificate.certificateId, first.certificate.certificateId);

      await f.client.send(
        new UpdateCACertificateCommand({ certificateId: caId, newAutoRegistrationStatus: "DISABLE" }),
      );
      const other = opensslSign(opensslCsr("ec:P-256", "/CN=jitr-2").csrPem, ca);
      await assert.rejects(
        f.emulator.registerCertificateFromCa(other),
        (error: unknown) =>
          error instanceof IotServiceError && error.errorType === "CertificateValidationException",
      );
    });
  });
});
