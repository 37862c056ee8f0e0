import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { createCsr, createKeyPair, type KeyPairAlgorithm } from "#core/pki/issue.ts";
import { CliError } from "../cli-error.ts";
import { vendWithRetries } from "../device/vend-client.ts";
import { checkP12Options, P12_FILE, writeP12 } from "../device/vend-p12.ts";
import { printResult } from "../output.ts";
import { resolveTarget, withTargetOptions } from "../wiring.ts";
import { registerDeviceCoapCommand } from "./device-coap.ts";
import { registerDeviceConnectCommand } from "./device-connect.ts";
import { registerDeviceIssueCommand } from "./device-issue.ts";
import { registerDeviceSimulateCommand } from "./device-simulate.ts";

const keyTypes: Record<string, KeyPairAlgorithm> = {
  "ec-p256": "EC-P256",
  "ec-p384": "EC-P384",
  "rsa-2048": "RSA-2048",
};

type VendOptions = {
  serial: string;
  productKey: string;
  secret?: string;
  keyMode: string;
  keyType: string;
  out?: string;
  p12?: boolean;
  p12Password?: string;
  api?: string;
  json?: boolean;
  endpoints?: string;
};

/** `onramp device vend | issue | connect` */
export function registerDeviceCommands(program: Command): void {
  const device = program
    .command("device")
    .description("Do what a device does (vend a certificate) and factory tasks (issue certificates)");
  registerDeviceIssueCommand(device);
  registerDeviceConnectCommand(device);
  registerDeviceCoapCommand(device);
  registerDeviceSimulateCommand(device);

  withTargetOptions(
    device
      .command("vend")
      .description(
        "Get a certificate from the vending API like a device: make a key and CSR, sign, call, save",
      )
      .requiredOption("--serial <serial>", "the device's serial number")
      .requiredOption("--product-key <key>", "the device's product key")
      .option("--secret <secret>", "the secret the device signs with (or env ONRAMP_DEVICE_SECRET)")
      .option("--key-mode <mode>", "csr (key made here, never sent) | server (key made by AWS IoT)", "csr")
      .option("--key-type <type>", `device key: ${Object.keys(keyTypes).join(" | ")}`, "ec-p256")
      .option(
        "--out <dir>",
        "save device.key, device.crt, root-ca.pem and device.json here (never overwrites: refused if one exists)",
      )
      .option(
        "--p12",
        "also save device.p12 (key + certificate, PKCS#12) in --out, for stacks that import .p12: RSA keys made by AWS IoT only (--key-mode server)",
      )
      .option(
        "--p12-password <password>",
        "password of device.p12 (or env ONRAMP_P12_PASSWORD; default: empty)",
      )
      .option("--api <url>", "vending API base URL (default: the local stack's)")
      .option("--json", "print JSON (never includes the private key)")
      .addHelpText(
        "after",
        '\nExample:\n  onramp device vend --serial DEMO-0001 --product-key demo-product --secret "$SECRET" --out ./device',
      ),
  ).action(async (options: VendOptions) => {
    const secret = options.secret ?? process.env.ONRAMP_DEVICE_SECRET;
    if (!secret) throw new CliError("--secret (or ONRAMP_DEVICE_SECRET) is required");
    if (options.keyMode !== "csr" && options.keyMode !== "server")
      throw new CliError("--key-mode must be csr or server");
    const algorithm = keyTypes[options.keyType];
    if (!algorithm) throw new CliError(`--key-type must be one of ${Object.keys(keyTypes).join(", ")}`);
    checkP12Options(options);
    // Before any request: a vend consumes the serial (a second one with a new key is refused under
    // the `never` policy), and the key already there may be the only one a device has.
    if (options.out) {
      for (const name of [
        "device.key",
        "device.crt",
        "root-ca.pem",
        "device.json",
        ...(options.p12 ? [P12_FILE] : []),
      ]) {
        const path = join(options.out, name);
        if (existsSync(path)) {
          throw new CliError(
            `${path} exists already; refusing to overwrite it (choose another --out, or move the old files away).`,
            1,
            "FILE_EXISTS",
          );
        }
      }
    }
    const apiUrl = options.api ?? (await resolveTarget(options)).apiUrl;
    if (!apiUrl) throw new CliError("no vending API URL: pass --api");

    let privateKeyPem: string | undefined;
    let csr: string | undefined;
    if (options.keyMode === "csr") {
      privateKeyPem = (await createKeyPair(algorithm)).privateKeyPem;
      csr = await createCsr({ privateKeyPem, subject: { commonName: options.serial } });
    }
    // Honours Retry-After on 429/503/504 (and 409 in progress), a few attempts with jitter.
    const response = await vendWithRetries({
      apiUrl,
      serialNumber: options.serial,
      productKey: options.productKey,
      secret,
      keyMode: options.keyMode,
      ...(csr ? { csr } : {}),
    }).catch((error: unknown) => {
      throw new CliError(`cannot reach ${apiUrl}: ${error instanceof Error ? error.message : String(error)}`);
    });
    if (response.status >= 300) {
      const e = response.body.error as { code?: string; message?: string } | undefined;
      const retry = response.headers.get("retry-after");
      throw new CliError(
        `vending failed: HTTP ${response.status} ${e?.code ?? ""}: ${e?.message ?? ""}${retry ? ` (retry after ${retry} s)` : ""}`,
      );
    }
    const body = response.body as Record<string, string>;
    privateKeyPem ??= body.privateKeyPem;
    const summary = {
      certificateId: body.certificateId,
      thingName: body.thingName,
      mqttEndpoint: body.mqttEndpoint,
      replayed: body.replayed,
      ...(options.out ? { savedTo: options.out } : {}),
    };
    if (options.out) {
      mkdirSync(options.out, { recursive: true });
      if (privateKeyPem) writeFileSync(join(options.out, "device.key"), privateKeyPem, { mode: 0o600 });
      writeFileSync(join(options.out, "device.crt"), body.certificatePem ?? "");
      writeFileSync(join(options.out, "root-ca.pem"), body.rootCaPem ?? "");
      writeFileSync(join(options.out, "device.json"), `${JSON.stringify(summary, null, 2)}\n`);
      if (options.p12) {
        writeP12(options.out, {
          privateKeyPem: privateKeyPem ?? "",
          certificatePem: body.certificatePem ?? "",
          password: options.p12Password ?? process.env.ONRAMP_P12_PASSWORD ?? "",
          ...(body.thingName ? { friendlyName: body.thingName } : {}),
        });
      }
    }
    printResult(summary, options.json);
  });
}
