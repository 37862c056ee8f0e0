import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DescribeCACertificateCommand,
  GetRegistrationCodeCommand,
  RegisterCACertificateCommand,
} from "@aws-sdk/client-iot";
import { CliError } from "#cli/cli-error.ts";
import { NotFoundError } from "#core/errors.ts";
import { loadProvisioningTemplate } from "#templates/catalog.ts";
import { startTestStack } from "#test/support/local-stack.ts";
import { onramp } from "#test/support/run-cli.ts";

/** Runs `onramp ...` in-process and returns what it printed. */
async function run(...args: string[]): Promise<{ stdout: string; json: Record<string, unknown> }> {
  const { stdout } = await onramp(...args);
  return { stdout, json: args.includes("--json") ? JSON.parse(stdout) : {} };
}

async function fail(...args: string[]): Promise<unknown> {
  try {
    await run(...args);
  } catch (error) {
    return error;
  }
  assert.fail(`onramp ${args.join(" ")} succeeded`);
}

function openssl(args: string[], cwd?: string): string {
  return execFileSync("openssl", args, {
    stdio: ["pipe", "pipe", "pipe"],
    ...(cwd ? { cwd } : {}),
  }).toString();
}

const mode = (file: string) => statSync(file).mode & 0o777;
const sha256OfDer = (pemFile: string) =>
  createHash("sha256")
    .update(execFileSync("openssl", ["x509", "-in", pemFile, "-outform", "DER"]))
    .digest("hex");

describe("onramp ca and device issue", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "onramp-ca-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe("ca create", () => {
    it("writes a root CA that openssl reads, its key with mode 0600, and prints its id", async () => {
      const out = join(dir, "root");
      const { json } = await run("ca", "create", "--out", out, "--name", "Test Device CA", "--json");
      const cert = join(out, "root-ca.pem");
      const key = join(out, "root-ca.key");
      assert.deepEqual(json, { caCertificateId: sha256OfDer(cert), certificate: cert, privateKey: key });
      assert.equal(mode(key), 0o600);
      const text = openssl(["x509", "-in", cert, "-noout", "-subject", "-ext", "basicConstraints,keyUsage"]);
      assert.match(text, /subject=CN ?= ?Test Device CA/);
      assert.match(text, /CA:TRUE/);
      assert.match(text, /Certificate Sign/);
      openssl(["verify", "-CAfile", cert, cert]);
      // The key is the certificate's.
      const fromCert = openssl(["x509", "-in", cert, "-noout", "-pubkey"]);
      const fromKey = openssl(["pkey", "-in", key, "-pubout"]);
      assert.equal(fromKey, fromCert);
    });

    it("refuses to overwrite existing files and names the file", async () => {
      const out = join(dir, "twice");
      await run("ca", "create", "--out", out, "--json");
      const before = readFileSync(join(out, "root-ca.key"), "utf8");
      const error = await fail("ca", "create", "--out", out, "--json");
      assert.ok(error instanceof CliError);
      assert.match(error.message, /root-ca\.pem exists already/);
      assert.equal(readFileSync(join(out, "root-ca.key"), "utf8"), before);
      // Only the intermediate is new here, but the root files exist: nothing is written.
      const again = await fail("ca", "create", "--out", out, "--intermediate", "--json");
      assert.ok(again instanceof CliError);
      assert.equal(existsSync(join(out, "intermediate-ca.pem")), false);
    });

    it("creates an RSA root and an intermediate that openssl verifies against it", async () => {
      const out = join(dir, "inter");
      const { json } = await run(
        ...["ca", "create", "--out", out, "--key", "rsa-2048", "--days", "30", "--intermediate", "--json"],
      );
      assert.equal(json.certificate, join(out, "intermediate-ca.pem"));
      assert.equal(json.caCertificateId, sha256OfDer(join(out, "intermediate-ca.pem")));
      assert.equal(json.rootCaCertificateId, sha256OfDer(join(out, "root-ca.pem")));
      assert.equal(mode(join(out, "root-ca.key")), 0o600);
      assert.equal(mode(join(out, "intermediate-ca.key")), 0o600);
      const verified = openssl([
        "verify",
        "-CAfile",
        join(out, "root-ca.pem"),
        join(out, "intermediate-ca.pem"),
      ]);
      assert.match(verified, /: OK/);
      assert.match(
        openssl(["x509", "-in", join(out, "root-ca.pem"), "-noout", "-text"]),
        /rsaEncryption\s+Public-Key: \(2048 bit\)/,
      );
      assert.equal(
        readFileSync(join(out, "ca-chain.pem"), "utf8"),
        readFileSync(join(out, "intermediate-ca.pem"), "utf8") +
          readFileSync(join(out, "root-ca.pem"), "utf8"),
      );
    });

    it("rejects bad options", async () => {
      assert.match(String(await fail("ca", "create", "--out", join(dir, "x"), "--key", "dsa")), /--key/);
      assert.match(String(await fail("ca", "create", "--out", join(dir, "x"), "--days", "0")), /--days/);
    });
  });

  describe("device issue", () => {
    let ca: { cert: string; key: string };
    before(async () => {
      await run("ca", "create", "--out", join(dir, "issuing"), "--json");
      ca = { cert: join(dir, "issuing", "root-ca.pem"), key: join(dir, "issuing", "root-ca.key") };
    });

    it("issues a key (0600), a certificate with CN = serial that openssl verifies, and the chain file", async () => {
      const out = join(dir, "one");
      const { json } = await run(
        ...["device", "issue", "--ca-cert", ca.cert, "--ca-key", ca.key, "--serial", "SN-0001", "--out", out],
        "--json",
      );
      const devices = json.devices as Array<Record<string, string>>;
      assert.equal(devices.length, 1);
      const device = devices[0]!;
      assert.equal(device.serialNumber, "SN-0001");
      assert.equal(device.directory, join(out, "SN-0001"));
      assert.deepEqual(readdirSync(device.directory!).sort(), [
        "device-and-ca.crt",
        "device.crt",
        "device.key",
      ]);
      assert.equal(mode(device.privateKey!), 0o600);
      assert.match(openssl(["verify", "-CAfile", ca.cert, device.certificate!]), /device\.crt: OK/);
      assert.match(openssl(["x509", "-in", device.certificate!, "-noout", "-subject"]), /CN ?= ?SN-0001/);
      assert.equal(device.certificateId, sha256OfDer(device.certificate!));
      assert.equal(
        readFileSync(device.chain!, "utf8"),
        readFileSync(device.certificate!, "utf8") + readFileSync(ca.cert, "utf8"),
      );
      const fromCert = openssl(["x509", "-in", device.certificate!, "-noout", "-pubkey"]);
      assert.equal(openssl(["pkey", "-in", device.privateKey!, "-pubout"]), fromCert);
      assert.equal(json.caCertificateId, sha256OfDer(ca.cert));
    });

    it("issues a batch of 20 that openssl verifies, and refuses to issue over it again", async () => {
      const out = join(dir, "batch");
      const args = ["device", "issue", "--ca-cert", ca.cert, "--ca-key", ca.key, "--out", out];
      const { json } = await run(...args, "--count", "20", "--prefix", "B-", "--start", "7", "--json");
      const devices = json.devices as Array<Record<string, string>>;
      assert.deepEqual(
        devices.map((d) => d.serialNumber),
        Array.from({ length: 20 }, (_, i) => `B-${String(7 + i).padStart(4, "0")}`),
      );
      assert.equal(new Set(devices.map((d) => d.certificateId)).size, 20);
      const verified = openssl(["verify", "-CAfile", ca.cert, ...devices.map((d) => d.certificate!)]);
      assert.equal(verified.match(/: OK/g)?.length, 20);
      for (const d of devices) assert.equal(mode(d.privateKey!), 0o600);

      const error = await fail(...args, "--count", "3", "--prefix", "B-", "--start", "26");
      assert.ok(error instanceof CliError);
      assert.match(error.message, /B-0026.*exists already/);
      assert.equal(existsSync(join(out, "B-0027")), false, "nothing of the refused batch was written");
    });

    it("chains device certificates of an intermediate CA up to the root", async () => {
      const cas = join(dir, "issuing-inter");
      await run("ca", "create", "--out", cas, "--intermediate", "--json");
      const out = join(dir, "via-inter");
      const { json } = await run(
        ...["device", "issue", "--ca-cert", join(cas, "intermediate-ca.pem")],
        ...[
          "--ca-key",
          join(cas, "intermediate-ca.key"),
          "--serial",
          "I-1",
          "--out",
          out,
          "--key",
          "rsa-2048",
        ],
        "--json",
      );
      const device = (json.devices as Array<Record<string, string>>)[0]!;
      const verified = openssl([
        ...["verify", "-CAfile", join(cas, "root-ca.pem")],
        ...["-untrusted", join(cas, "intermediate-ca.pem"), device.certificate!],
      ]);
      assert.match(verified, /: OK/);
    });

    it("rejects a key that is not the CA's, bad serials and mixed modes with a clear message", async () => {
      const other = join(dir, "other");
      await run("ca", "create", "--out", other, "--json");
      const wrongKey = await fail(
        ...["device", "issue", "--ca-cert", ca.cert, "--ca-key", join(other, "root-ca.key")],
        ...["--serial", "SN-9", "--out", join(dir, "wrong")],
      );
      assert.ok(wrongKey instanceof CliError);
      assert.match(wrongKey.message, /other\/root-ca\.key: .*does not belong/);
      const base = ["device", "issue", "--ca-cert", ca.cert, "--ca-key", ca.key, "--out", join(dir, "bad")];
      assert.match(String(await fail(...base, "--serial", "has space")), /serial number "has space"/);
      assert.match(String(await fail(...base, "--serial", "A", "--count", "2", "--prefix", "X")), /either/);
      assert.match(String(await fail(...base, "--count", "2")), /--count and --prefix/);
      assert.match(
        String(await fail(...base.slice(0, 3), join(dir, "missing.pem"), ...base.slice(4), "--serial", "A")),
        /Cannot read/,
      );
    });
  });

  describe("ca register against the local stack", () => {
    let stack: Awaited<ReturnType<typeof startTestStack>>;
    let endpoints: string;
    before(async () => {
      stack = await startTestStack();
      endpoints = join(dir, "endpoints.json");
      writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    });
    after(() => stack.stop());

    const describeCa = async (certificateId: string) =>
      stack.iotClient.send(new DescribeCACertificateCommand({ certificateId }));

    it("registers a CA active with auto-registration, then reports it as already registered", async () => {
      const out = join(dir, "reg");
      const created = await run("ca", "create", "--out", out, "--json");
      const args = [
        "ca",
        "register",
        "--ca-cert",
        join(out, "root-ca.pem"),
        "--ca-key",
        join(out, "root-ca.key"),
      ];
      const { json } = await run(...args, "--endpoints", endpoints, "--json");
      assert.equal(json.caCertificateId, created.json.caCertificateId);
      assert.equal(json.result, "registered");
      assert.equal(json.status, "ACTIVE");
      assert.equal(json.autoRegistrationStatus, "ENABLE");
      const described = await describeCa(String(json.caCertificateId));
      assert.equal(described.certificateDescription?.status, "ACTIVE");
      assert.equal(described.certificateDescription?.autoRegistrationStatus, "ENABLE");
      assert.equal(described.certificateDescription?.certificateMode, "DEFAULT");
      assert.equal(described.registrationConfig, undefined);

      const again = await run(...args, "--endpoints", endpoints, "--json");
      assert.equal(again.json.result, "already registered");
      assert.equal(again.json.caCertificateId, json.caCertificateId);
      assert.equal(again.json.status, "ACTIVE");
      const text = await run(...args, "--endpoints", endpoints);
      assert.match(text.stdout, /already registered/);
    });

    it("attaches a JITP template and a role with --jitp", async () => {
      const out = join(dir, "jitp");
      await run("ca", "create", "--out", out, "--json");
      const files = ["--ca-cert", join(out, "root-ca.pem"), "--ca-key", join(out, "root-ca.key")];
      const { json } = await run(
        "ca",
        "register",
        ...files,
        "--jitp",
        "jitp-device",
        "--endpoints",
        endpoints,
        "--json",
      );
      assert.equal(json.jitp, "template attached");
      const described = await describeCa(String(json.caCertificateId));
      assert.equal(described.registrationConfig?.templateBody, loadProvisioningTemplate("jitp-device"));
      assert.equal(described.registrationConfig?.roleArn, "arn:aws:iam::000000000000:role/onramp-jitp");

      const noTemplate = await fail("ca", "register", ...files, "--jitp", "nope", "--endpoints", endpoints);
      assert.ok(noTemplate instanceof NotFoundError);
      const badRole = await fail(
        ...["ca", "register", ...files, "--jitp", "jitp-device", "--role-arn", "role"],
        ...["--endpoints", endpoints],
      );
      assert.match(String(badRole), /not an IAM role ARN/);
    });

    it("accepts a CA made by hand with openssl (seed 004), and the SDK registration made by hand works too", async () => {
      const work = mkdtempSync(join(dir, "openssl-"));
      // The CA, as seed 004 makes it.
      openssl(["genrsa", "-out", "rootCA.key", "2048"], work);
      openssl(
        [
          ...["req", "-x509", "-new", "-nodes", "-key", "rootCA.key", "-sha256", "-days", "1024"],
          ...["-subj", "/CN=openssl root", "-out", "rootCA.pem"],
        ],
        work,
      );
      // The verification certificate: CN = the registration code, signed by the CA key.
      const { registrationCode } = await stack.iotClient.send(new GetRegistrationCodeCommand({}));
      assert.ok(registrationCode);
      openssl(["genrsa", "-out", "verificationCert.key", "2048"], work);
      openssl(
        [
          ...["req", "-new", "-key", "verificationCert.key", "-out", "verificationCert.csr"],
          ...["-subj", `/CN=${registrationCode}`],
        ],
        work,
      );
      openssl(
        [
          ...["x509", "-req", "-in", "verificationCert.csr", "-CA", "rootCA.pem", "-CAkey", "rootCA.key"],
          ...["-CAcreateserial", "-out", "verificationCert.pem", "-days", "500", "-sha256"],
        ],
        work,
      );
      const registered = await stack.iotClient.send(
        new RegisterCACertificateCommand({
          caCertificate: readFileSync(join(work, "rootCA.pem"), "utf8"),
          verificationCertificate: readFileSync(join(work, "verificationCert.pem"), "utf8"),
          setAsActive: true,
          allowAutoRegistration: true,
        }),
      );
      assert.equal(registered.certificateId, sha256OfDer(join(work, "rootCA.pem")));
      const described = await describeCa(registered.certificateId!);
      assert.equal(described.certificateDescription?.status, "ACTIVE");
      assert.equal(described.certificateDescription?.autoRegistrationStatus, "ENABLE");

      // The CLI knows the openssl CA is registered, and issues devices with it that openssl verifies.
      const files = ["--ca-cert", join(work, "rootCA.pem"), "--ca-key", join(work, "rootCA.key")];
      const again = await run("ca", "register", ...files, "--endpoints", endpoints, "--json");
      assert.equal(again.json.result, "already registered");
      assert.equal(again.json.caCertificateId, registered.certificateId);
      const { json } = await run(
        "device",
        "issue",
        ...files,
        "--serial",
        "OSSL-1",
        "--out",
        join(work, "d"),
        "--json",
      );
      const device = (json.devices as Array<Record<string, string>>)[0]!;
      assert.match(openssl(["verify", "-CAfile", join(work, "rootCA.pem"), device.certificate!]), /: OK/);
    });
  });
});
