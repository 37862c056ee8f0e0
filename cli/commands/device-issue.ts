import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { splitPemBundle } from "#core/pki/certificate.ts";
import { type CertificateIssuer, createKeyPair, type KeyPairAlgorithm } from "#core/pki/issue.ts";
import { serialNumberSchema } from "#core/registry/model.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";
import { progressBar } from "../progress.ts";
import { issuedKeyTypes, loadCa, parseKeyType, parseWholeNumber, readText, writeNewFiles } from "./ca.ts";

/** The files `device issue` writes for one device, in `{out}/{serial}/`. */
export const DEVICE_FILES = {
  key: "device.key",
  certificate: "device.crt",
  /** What the device presents in the TLS handshake: its certificate, then the CA's, as AWS's JITR guide has it. */
  chain: "device-and-ca.crt",
} as const;

const MAX_COUNT = 100_000;

type IssueOptions = {
  caCert: string;
  caKey: string;
  serial?: string;
  count?: string;
  prefix?: string;
  start: string;
  digits: string;
  out: string;
  key: string;
  days: string;
  concurrency: string;
  json?: boolean;
};

/** One issued device, as printed with --json. */
export type IssuedDevice = {
  serialNumber: string;
  certificateId: string;
  directory: string;
  privateKey: string;
  certificate: string;
  chain: string;
};

/**
 * `onramp device issue`: factory-side issuing of device certificates signed by your own CA, for
 * just-in-time registration. Subject CN = serial number; one folder per device.
 */
export function registerDeviceIssueCommand(deviceCommand: Command): void {
  deviceCommand
    .command("issue")
    .description(
      "Issue device keys and certificates (CN = serial) signed by your CA, for JITR; one folder per device",
    )
    .requiredOption(
      "--ca-cert <file>",
      "the signing CA certificate (PEM; a bundle's other certificates join the chain)",
    )
    .requiredOption("--ca-key <file>", "the signing CA private key (PEM, unencrypted)")
    .option("--serial <serial>", "one device's serial number")
    .option("--count <n>", `batch mode: this many devices (1-${MAX_COUNT})`)
    .option("--prefix <prefix>", "batch mode: serial number prefix")
    .option("--start <k>", "batch mode: first number", "1")
    .option("--digits <n>", "batch mode: numbers are zero-padded to this width", "4")
    .option("--out <dir>", "devices are written to <dir>/<serial>/", "devices")
    .option("--key <type>", `device key type: ${Object.keys(issuedKeyTypes).join(" | ")}`, "ec-p256")
    .option("--days <n>", "validity in days", "365")
    .option("--concurrency <n>", "certificates made in parallel", "8")
    .option("--json", "print JSON (serials and paths; never key material)")
    .addHelpText(
      "after",
      "\nExamples:\n  onramp device issue --ca-cert ca/root-ca.pem --ca-key ca/root-ca.key --serial SN-0001\n  onramp device issue --ca-cert ca/root-ca.pem --ca-key ca/root-ca.key --count 1000 --prefix SN- --out factory",
    )
    .action(async (options: IssueOptions) => {
      const serials = serialsToIssue(options);
      const keyAlgorithm = parseKeyType(options.key);
      const days = parseWholeNumber(options.days, "--days", 1, 36500);
      const concurrency = parseWholeNumber(options.concurrency, "--concurrency", 1, 64);
      const planned = serials.map((serial) => plannedFiles(options.out, serial));
      for (const device of planned) {
        for (const path of [device.privateKey, device.certificate, device.chain]) {
          if (existsSync(path)) throw new CliError(`${path} exists already; refusing to overwrite it.`);
        }
      }
      const { issuer } = await loadCa(options.caCert, options.caKey);
      const caChain = splitPemBundle(readText(options.caCert)).join("");
      const progress = progressBar("issuing", serials.length, !options.json && serials.length > 1);
      let done = 0;
      const issued = await mapConcurrently(planned, concurrency, async (device) => {
        const result = await issueDevice(issuer, caChain, device, keyAlgorithm, days);
        progress.update(++done);
        return result;
      }).finally(() => progress.stop());

      if (options.json) {
        process.stdout.write(
          `${JSON.stringify({ caCertificateId: issuer.caCertificateId, out: options.out, devices: issued }, null, 2)}\n`,
        );
      } else if (issued.length === 1) {
        printResult({ ...issued[0], caCertificateId: issuer.caCertificateId }, false);
      } else {
        process.stdout.write(
          `issued ${issued.length} device certificates (${issued[0]?.serialNumber} .. ${issued.at(-1)?.serialNumber}) in ${options.out}, signed by CA ${issuer.caCertificateId}\n`,
        );
      }
    });
}

/** The serial numbers to issue: `--serial`, or `--count` numbers after `--prefix`. */
function serialsToIssue(options: IssueOptions): string[] {
  const batch = options.count !== undefined || options.prefix !== undefined;
  if (options.serial !== undefined && batch) throw new CliError("use either --serial or --count/--prefix");
  let serials: string[];
  if (options.serial !== undefined) {
    serials = [options.serial];
  } else {
    if (options.count === undefined || options.prefix === undefined) {
      throw new CliError("give --serial, or --count and --prefix");
    }
    const count = parseWholeNumber(options.count, "--count", 1, MAX_COUNT);
    const start = parseWholeNumber(options.start, "--start", 0, Number.MAX_SAFE_INTEGER - MAX_COUNT);
    const digits = parseWholeNumber(options.digits, "--digits", 1, 20);
    const prefix = options.prefix;
    serials = Array.from({ length: count }, (_, i) => `${prefix}${String(start + i).padStart(digits, "0")}`);
  }
  for (const serial of [serials[0], serials.at(-1)]) {
    const parsed = serialNumberSchema.safeParse(serial);
    if (!parsed.success) {
      throw new CliError(`serial number "${serial}": ${parsed.error.issues[0]?.message ?? "invalid"}`);
    }
  }
  return serials;
}

function plannedFiles(out: string, serialNumber: string): Omit<IssuedDevice, "certificateId"> {
  const directory = join(out, serialNumber);
  return {
    serialNumber,
    directory,
    privateKey: join(directory, DEVICE_FILES.key),
    certificate: join(directory, DEVICE_FILES.certificate),
    chain: join(directory, DEVICE_FILES.chain),
  };
}

async function issueDevice(
  issuer: CertificateIssuer,
  caChain: string,
  device: Omit<IssuedDevice, "certificateId">,
  keyAlgorithm: KeyPairAlgorithm,
  days: number,
): Promise<IssuedDevice> {
  const keys = await createKeyPair(keyAlgorithm);
  const certificate = await issuer.issue({
    subjectPublicKey: keys.publicKeyPem,
    subject: { commonName: device.serialNumber },
    days,
  });
  mkdirSync(device.directory, { recursive: true });
  writeNewFiles([
    { path: device.privateKey, content: keys.privateKeyPem, mode: 0o600 },
    { path: device.certificate, content: certificate.certificatePem },
    { path: device.chain, content: certificate.certificatePem + caChain },
  ]);
  return { ...device, certificateId: certificate.certificateId };
}

/** Maps with at most `limit` calls in flight; results keep the input order. */
async function mapConcurrently<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
