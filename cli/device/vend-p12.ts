/** `onramp device vend --p12`: the server-made RSA key and its certificate as device.p12. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidKeyError } from "#core/pki/errors.ts";
import { toPkcs12 } from "#core/pki/pkcs12.ts";
import { CliError } from "../cli-error.ts";

export const P12_FILE = "device.p12";

/** Refuses --p12 where it cannot work, before the vend request consumes the serial. */
export function checkP12Options(options: { p12?: boolean; out?: string; keyMode: string }): void {
  if (!options.p12) return;
  if (!options.out) throw new CliError("--p12 needs --out <dir> (device.p12 is written there)");
  if (options.keyMode !== "server") {
    throw new CliError(
      "--p12 is for RSA keys made by AWS IoT (--key-mode server); for a key made here, use " +
        "openssl pkcs12 -export -inkey device.key -in device.crt -out device.p12",
    );
  }
}

/** Writes device.p12 (mode 0600): the key, encrypted with `password` (may be empty), and its certificate. */
export function writeP12(
  out: string,
  input: { privateKeyPem: string; certificatePem: string; password: string; friendlyName?: string },
): string {
  let der: Uint8Array;
  try {
    der = toPkcs12(input);
  } catch (error) {
    if (error instanceof InvalidKeyError) {
      throw new CliError(`device.p12 not written: ${error.message} (device.key and device.crt are saved)`);
    }
    throw error;
  }
  const path = join(out, P12_FILE);
  writeFileSync(path, der, { mode: 0o600 });
  return path;
}
