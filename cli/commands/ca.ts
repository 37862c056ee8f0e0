import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { AwsCaRegistry } from "#adapters/iot-ca-registry.ts";
import { ValidationError } from "#core/errors.ts";
import { registerCaCertificate } from "#core/jitr/register-ca-certificate.ts";
import { InvalidKeyError } from "#core/pki/errors.ts";
import {
  CertificateIssuer,
  createKeyPair,
  createSelfSignedCa,
  type KeyPairAlgorithm,
} from "#core/pki/issue.ts";
import { loadProvisioningTemplate } from "#templates/catalog.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";
import { withIotClient, withTargetOptions } from "../wiring.ts";

/** Key types of CAs and device keys made by `ca create` and `device issue`. */
export const issuedKeyTypes: Record<string, KeyPairAlgorithm> = {
  "ec-p256": "EC-P256",
  "rsa-2048": "RSA-2048",
};

/** The JITP role used against the local stack when `--role-arn` is absent (any well-formed ARN works there). */
export const LOCAL_JITP_ROLE_ARN = "arn:aws:iam::000000000000:role/onramp-jitp";

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

/** Reads `--key`; throws CliError naming the allowed values. */
export function parseKeyType(value: string): KeyPairAlgorithm {
  const algorithm = issuedKeyTypes[value];
  if (!algorithm) throw new CliError(`--key must be one of ${Object.keys(issuedKeyTypes).join(", ")}`);
  return algorithm;
}

/** Reads a whole-number option within bounds; throws CliError naming the option. */
export function parseWholeNumber(value: string, option: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliError(`${option} must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/**
 * Loads a CA certificate and its private key from PEM files, once, for signing. Throws CliError
 * naming the file that is missing or does not parse, or saying that the key is not the CA's.
 */
export async function loadCa(
  certFile: string,
  keyFile: string,
): Promise<{ issuer: CertificateIssuer; privateKeyPem: string }> {
  const certPem = readText(certFile);
  const privateKeyPem = readText(keyFile);
  try {
    return { issuer: await CertificateIssuer.create({ certPem, privateKeyPem }), privateKeyPem };
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new CliError(`${error instanceof InvalidKeyError ? keyFile : certFile}: ${error.message}`);
  }
}

/** Reads a text file; throws CliError naming it when it is missing or unreadable. */
export function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    throw new CliError(`Cannot read ${file}.`);
  }
}

/** A file to create; private keys get mode 0600. */
export type NewFile = { path: string; content: string; mode?: number };

/**
 * Creates files that must not exist yet: every path is checked before anything is written, and
 * each is created exclusively (`wx`), so an existing file is never overwritten. Throws CliError
 * naming the first file that exists.
 */
export function writeNewFiles(files: NewFile[]): void {
  for (const file of files) {
    if (existsSync(file.path)) throw new CliError(`${file.path} exists already; refusing to overwrite it.`);
  }
  for (const file of files) {
    try {
      writeFileSync(file.path, file.content, { flag: "wx", mode: file.mode ?? 0o644 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") {
        throw new CliError(`${file.path} exists already; refusing to overwrite it.`);
      }
      throw new CliError(`Cannot write ${file.path}: ${(error as Error).message}`);
    }
  }
}

type CreateOptions = {
  out: string;
  name: string;
  key: string;
  days: string;
  intermediate?: boolean;
  json?: boolean;
};
type RegisterOptions = {
  caCert: string;
  caKey: string;
  jitp?: string;
  roleArn?: string;
  json?: boolean;
  endpoints?: string;
};

/** `onramp ca create | register`: a device CA for JITR / JITP and its registration with AWS IoT. */
export function registerCaCommands(program: Command): void {
  const ca = program
    .command("ca")
    .description(
      "Device certificate authorities for just-in-time registration (JITR) and provisioning (JITP)",
    );

  ca.command("create")
    .description(
      "Create a root CA (and optionally an intermediate signed by it); keys are written with mode 0600",
    )
    .requiredOption("--out <dir>", "folder for the CA files (existing files are never overwritten)")
    .option("--name <cn>", "common name of the CA", "onramp device CA")
    .option("--key <type>", `key type: ${Object.keys(issuedKeyTypes).join(" | ")}`, "ec-p256")
    .option("--days <n>", "validity in days", "3650")
    .option("--intermediate", "also create an intermediate CA signed by the root; devices are signed by it")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nExample:\n  onramp ca create --out ./ca --name 'Acme device CA'\n  onramp ca register --ca-cert ./ca/root-ca.pem --ca-key ./ca/root-ca.key",
    )
    .action(async (options: CreateOptions) => {
      const keyAlgorithm = parseKeyType(options.key);
      const days = parseWholeNumber(options.days, "--days", 1, 36500);
      const paths = {
        rootCert: join(options.out, "root-ca.pem"),
        rootKey: join(options.out, "root-ca.key"),
        intermediateCert: join(options.out, "intermediate-ca.pem"),
        intermediateKey: join(options.out, "intermediate-ca.key"),
        chain: join(options.out, "ca-chain.pem"),
      };
      const root = await createSelfSignedCa({
        subject: { commonName: options.name },
        keyAlgorithm,
        days,
        ...(options.intermediate ? { pathLength: 1 } : {}),
      });
      const files: NewFile[] = [
        { path: paths.rootCert, content: root.certPem },
        { path: paths.rootKey, content: root.privateKeyPem, mode: 0o600 },
      ];
      let result: Record<string, unknown> = {
        caCertificateId: root.certificateId,
        certificate: paths.rootCert,
        privateKey: paths.rootKey,
      };
      if (options.intermediate) {
        const keys = await createKeyPair(keyAlgorithm);
        const issuer = await CertificateIssuer.create(root);
        const intermediate = await issuer.issue({
          subjectPublicKey: keys.publicKeyPem,
          subject: { commonName: `${options.name} Intermediate` },
          days,
          isCa: true,
          pathLength: 0,
        });
        files.push(
          { path: paths.intermediateCert, content: intermediate.certificatePem },
          { path: paths.intermediateKey, content: keys.privateKeyPem, mode: 0o600 },
          { path: paths.chain, content: intermediate.certificatePem + root.certPem },
        );
        result = {
          caCertificateId: intermediate.certificateId,
          certificate: paths.intermediateCert,
          privateKey: paths.intermediateKey,
          chain: paths.chain,
          rootCaCertificateId: root.certificateId,
          rootCertificate: paths.rootCert,
          rootPrivateKey: paths.rootKey,
        };
      }
      mkdirSync(options.out, { recursive: true });
      writeNewFiles(files);
      printResult(result, options.json);
      if (!options.json) {
        process.stderr.write(
          `\nNext: onramp ca register --ca-cert ${result.certificate} --ca-key ${result.privateKey}\n`,
        );
      }
    });

  withTargetOptions(
    ca
      .command("register")
      .description(
        "Register a CA with AWS IoT (verification certificate with the registration code, active, auto-registration on); safe to re-run",
      )
      .requiredOption("--ca-cert <file>", "the CA certificate (PEM)")
      .requiredOption("--ca-key <file>", "the CA private key (PEM, unencrypted)")
      .option("--jitp <template>", "attach this provisioning template from templates/provisioning (JITP)")
      .option(
        "--role-arn <arn>",
        `IAM role AWS IoT runs the JITP template with (default: the stack's JitpRoleArn output with --aws, ${LOCAL_JITP_ROLE_ARN} locally)`,
      )
      .option("--json", "print JSON")
      .addHelpText(
        "after",
        "\nExamples:\n  onramp ca register --ca-cert ./ca/root-ca.pem --ca-key ./ca/root-ca.key\n  onramp ca register --ca-cert ./ca/root-ca.pem --ca-key ./ca/root-ca.key --jitp jitp-device",
      ),
  ).action(async (options: RegisterOptions) => {
    if (options.roleArn && !options.jitp) throw new CliError("--role-arn needs --jitp");
    const { issuer, privateKeyPem } = await loadCa(options.caCert, options.caKey);
    const templateBody = options.jitp ? loadProvisioningTemplate(options.jitp) : undefined;
    const result = await withIotClient(options, async (client, target) => {
      let registrationConfig: { templateBody: string; roleArn: string } | undefined;
      if (templateBody !== undefined) {
        const roleArn =
          options.roleArn ??
          target.jitpRoleArn ??
          (target.kind === "local" ? LOCAL_JITP_ROLE_ARN : undefined);
        if (!roleArn) throw new CliError("--role-arn is required with --jitp");
        if (!ROLE_ARN.test(roleArn)) throw new CliError(`--role-arn is not an IAM role ARN: ${roleArn}`);
        registrationConfig = { templateBody, roleArn };
      }
      return registerCaCertificate(
        { iot: new AwsCaRegistry(client) },
        {
          caCertPem: issuer.caCertPem,
          caPrivateKeyPem: privateKeyPem,
          ...(registrationConfig ? { registrationConfig } : {}),
        },
      );
    });
    const d = result.description;
    printResult(
      {
        caCertificateId: result.caCertificateId,
        result: result.registered ? "registered" : "already registered",
        ...(d
          ? {
              caCertificateArn: d.certificateArn,
              status: d.status,
              autoRegistrationStatus: d.autoRegistrationStatus,
              jitp: d.templateBody ? "template attached" : "none",
            }
          : {}),
      },
      options.json,
    );
  });
}
