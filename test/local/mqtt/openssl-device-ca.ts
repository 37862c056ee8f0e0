/**
 * Test helper: a device CA and device certificates made with the openssl CLI, step by step as
 * seed 004 (AWS JITR) does it: `genrsa` + `req -x509` for the CA, a verification certificate with
 * the registration code as CN, `req` + `x509 -req -CA` per device, and the chain file
 * `cat device.crt rootCA.pem` that the device presents. Files stay in `dir` (mosquitto reads them).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  GetRegistrationCodeCommand,
  type IoTClient,
  RegisterCACertificateCommand,
  type RegistrationConfig,
} from "@aws-sdk/client-iot";

/** A device's files (paths) and their contents. */
export type OpensslDevice = {
  serial: string;
  keyFile: string;
  certFile: string;
  /** Device certificate followed by the CA certificate. */
  chainFile: string;
  keyPem: string;
  certPem: string;
  chainPem: string;
};

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
}

/** A root CA made with openssl in `dir` (`rootCA.key`, `rootCA.pem`). */
export class OpensslDeviceCa {
  readonly keyFile: string;
  readonly certFile: string;
  readonly certPem: string;
  /** The AWS IoT CA certificate id: SHA-256 of the DER. */
  readonly caCertificateId: string;

  private constructor(readonly dir: string) {
    this.keyFile = join(dir, "rootCA.key");
    this.certFile = join(dir, "rootCA.pem");
    this.certPem = readFileSync(this.certFile, "utf8");
    const der = execFileSync("openssl", ["x509", "-in", this.certFile, "-outform", "DER"]);
    this.caCertificateId = createHash("sha256").update(der).digest("hex");
  }

  /** `openssl genrsa` + `openssl req -x509 -new` (CA:TRUE from openssl's v3_ca defaults). */
  static create(dir: string, name: string): OpensslDeviceCa {
    mkdirSync(dir, { recursive: true });
    openssl(["genrsa", "-out", "rootCA.key", "2048"], dir);
    openssl(
      [
        ...["req", "-x509", "-new", "-nodes", "-key", "rootCA.key", "-sha256", "-days", "30"],
        ...["-out", "rootCA.pem", "-subj", `/CN=${name}`],
      ],
      dir,
    );
    return new OpensslDeviceCa(dir);
  }

  /** A verification certificate (CN = the account's registration code) signed by this CA. */
  verificationCertificate(registrationCode: string): string {
    const dir = this.dir;
    openssl(["genrsa", "-out", "verificationCert.key", "2048"], dir);
    openssl(
      [
        ...["req", "-new", "-key", "verificationCert.key", "-out", "verificationCert.csr"],
        ...["-subj", `/CN=${registrationCode}`],
      ],
      dir,
    );
    openssl(
      [
        ...["x509", "-req", "-in", "verificationCert.csr", "-CA", "rootCA.pem", "-CAkey", "rootCA.key"],
        ...["-CAcreateserial", "-out", "verificationCert.pem", "-days", "1", "-sha256"],
      ],
      dir,
    );
    return readFileSync(join(dir, "verificationCert.pem"), "utf8");
  }

  /**
   * Registers this CA with AWS IoT (the emulator) as an operator would: GetRegistrationCode, the
   * verification certificate, RegisterCACertificate active with auto-registration.
   */
  async registerWith(client: IoTClient, registrationConfig?: RegistrationConfig): Promise<void> {
    const { registrationCode } = await client.send(new GetRegistrationCodeCommand({}));
    await client.send(
      new RegisterCACertificateCommand({
        caCertificate: this.certPem,
        verificationCertificate: this.verificationCertificate(registrationCode ?? ""),
        allowAutoRegistration: true,
        setAsActive: true,
        ...(registrationConfig ? { registrationConfig } : {}),
      }),
    );
  }

  /** A device key and certificate signed by this CA; the subject defaults to `/CN={serial}`. */
  issueDevice(serial: string, subject = `/CN=${serial}`): OpensslDevice {
    const dir = join(this.dir, serial);
    mkdirSync(dir, { recursive: true });
    const ca = ["-CA", this.certFile, "-CAkey", this.keyFile, "-CAcreateserial"];
    openssl(["genrsa", "-out", "deviceCert.key", "2048"], dir);
    openssl(["req", "-new", "-key", "deviceCert.key", "-out", "deviceCert.csr", "-subj", subject], dir);
    openssl(
      ["x509", "-req", "-in", "deviceCert.csr", ...ca, "-out", "deviceCert.crt", "-days", "30", "-sha256"],
      dir,
    );
    const keyFile = join(dir, "deviceCert.key");
    const certFile = join(dir, "deviceCert.crt");
    const chainFile = join(dir, "deviceCertAndCACert.crt");
    const certPem = readFileSync(certFile, "utf8");
    const chainPem = certPem + this.certPem;
    writeFileSync(chainFile, chainPem);
    return { serial, keyFile, certFile, chainFile, keyPem: readFileSync(keyFile, "utf8"), certPem, chainPem };
  }
}
