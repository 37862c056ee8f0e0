import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type CaKeyMaterial, createSelfSignedCa } from "#core/pki/index.ts";

/** The subject of the root CA the emulator makes for itself. */
export const LOCAL_ROOT_CA_SUBJECT = {
  commonName: "iot-onramp Local IoT Root CA",
  organization: "iot-onramp local stack",
};

/**
 * The emulator's root CA (it signs CreateCertificateFromCsr / CreateKeysAndCertificate
 * certificates): the given one; else `<dataDir>/root-ca.pem` + `root-ca.key` when they exist;
 * else a new EC P-256 CA, saved there (key 0600) when there is a data folder.
 */
export async function loadOrCreateRootCa(
  dataDir: string | undefined,
  given?: CaKeyMaterial,
): Promise<CaKeyMaterial> {
  if (given) return given;
  const certPath = dataDir && join(dataDir, "root-ca.pem");
  const keyPath = dataDir && join(dataDir, "root-ca.key");
  if (certPath && keyPath && existsSync(certPath) && existsSync(keyPath)) {
    return { certPem: readFileSync(certPath, "utf8"), privateKeyPem: readFileSync(keyPath, "utf8") };
  }
  const ca = await createSelfSignedCa({
    subject: LOCAL_ROOT_CA_SUBJECT,
    keyAlgorithm: "EC-P256",
    days: 25 * 365,
  });
  if (dataDir && certPath && keyPath) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    // Both private: the data folder holds nothing for other users (the CA certificate is public
    // anyway; the vending API hands it out).
    await writeAtomically(keyPath, ca.privateKeyPem, 0o600);
    await writeAtomically(certPath, ca.certPem, 0o600);
  }
  return { certPem: ca.certPem, privateKeyPem: ca.privateKeyPem };
}

async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode });
  await rename(temporary, path);
}
