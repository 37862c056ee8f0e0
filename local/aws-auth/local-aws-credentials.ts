import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as z from "zod";

/** The one key pair the local AWS endpoint accepts (SigV4-signed requests only). */
export type LocalAwsCredentials = { accessKeyId: string; secretAccessKey: string };

/** Where a data folder keeps its key pair (mode 0600). */
export const CREDENTIALS_FILE = "aws-credentials.json";

const credentialsSchema = z.object({
  accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/),
  secretAccessKey: z.string().min(32),
});

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** A fresh random key pair, shaped like AWS's (20-character key id, 40-character secret). */
export function newLocalAwsCredentials(): LocalAwsCredentials {
  const id = [...randomBytes(16)].map((byte) => BASE32[byte % 32]).join("");
  return { accessKeyId: `LKIA${id}`, secretAccessKey: randomBytes(30).toString("base64") };
}

/**
 * The data folder's key pair, made on its first start; a new one per start without a folder
 * (`--in-memory`, tests). Throws when the file exists but is not a key pair.
 */
export function loadOrCreateLocalAwsCredentials(dataDir: string | undefined): LocalAwsCredentials {
  if (!dataDir) return newLocalAwsCredentials();
  const path = join(dataDir, CREDENTIALS_FILE);
  if (existsSync(path)) {
    try {
      return credentialsSchema.parse(JSON.parse(readFileSync(path, "utf8")));
    } catch (error) {
      throw new Error(`${path} does not hold the local stack's AWS key pair; delete it to make a new one.`, {
        cause: error,
      });
    }
  }
  const credentials = newLocalAwsCredentials();
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, path);
  return credentials;
}

/** The shell line that points the aws CLI at the local stack's key pair. */
export function awsCliEnvironment(credentials: LocalAwsCredentials, region: string): string {
  return `export AWS_ACCESS_KEY_ID=${credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${credentials.secretAccessKey} AWS_REGION=${region} AWS_DEFAULT_REGION=${region}`;
}
