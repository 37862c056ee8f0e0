/**
 * Test helper: the openssl CLI as an independent implementation to check the pki module against.
 * Each call works in its own temporary folder.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A key type as `openssl req -newkey` spells it, plus the curve for EC. */
export type OpensslKey = "ec:P-256" | "ec:P-384" | "ec:P-521" | "rsa:2048" | "rsa:1024" | "ed25519";

/**
 * Runs openssl in a fresh temporary folder holding `files`; returns stdout and the text of the
 * `outputs` files. Throws when openssl exits with an error.
 */
export function openssl(
  args: string[],
  options: { files?: Record<string, string>; input?: string | Buffer; outputs?: string[] } = {},
): { stdout: Buffer; outputs: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), "onramp-openssl-"));
  try {
    for (const [name, content] of Object.entries(options.files ?? {}))
      writeFileSync(join(dir, name), content);
    const stdout = execFileSync("openssl", args, {
      cwd: dir,
      input: options.input,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const outputs: Record<string, string> = {};
    for (const name of options.outputs ?? []) outputs[name] = readFileSync(join(dir, name), "utf8");
    return { stdout, outputs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function newKeyArgs(key: OpensslKey): string[] {
  if (key.startsWith("ec:")) return ["-newkey", "ec", "-pkeyopt", `ec_paramgen_curve:${key.slice(3)}`];
  if (key === "ed25519") return ["-newkey", "ed25519"];
  return ["-newkey", key];
}

/**
 * A new key and CSR made by `openssl req`; `args` go to `openssl req` as well (e.g. `-sha1`,
 * `-multivalue-rdn`, `-sigopt rsa_padding_mode:pss`).
 */
export function opensslCsr(
  key: OpensslKey,
  subject: string,
  args: string[] = [],
): { csrPem: string; keyPem: string } {
  const { outputs } = openssl(
    [
      ...["req", "-new", ...newKeyArgs(key), "-nodes", "-keyout", "key.pem", "-subj", subject],
      ...[...args, "-out", "csr.pem"],
    ],
    { outputs: ["csr.pem", "key.pem"] },
  );
  return { csrPem: outputs["csr.pem"]!, keyPem: outputs["key.pem"]! };
}

/** A new self-signed CA made by `openssl req -x509`. */
export function opensslCa(
  subject: string,
  key: OpensslKey = "ec:P-256",
): { certPem: string; keyPem: string } {
  const { outputs } = openssl(
    [
      ...[
        "req",
        "-x509",
        ...newKeyArgs(key),
        "-nodes",
        "-keyout",
        "key.pem",
        "-subj",
        subject,
        "-days",
        "30",
      ],
      ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
      ...["-out", "cert.pem"],
    ],
    { outputs: ["cert.pem", "key.pem"] },
  );
  return { certPem: outputs["cert.pem"]!, keyPem: outputs["key.pem"]! };
}

/**
 * Signs a CSR with a CA (`openssl x509 -req`), e.g. a verification or device certificate. The
 * serial is random (`-CAcreateserial`) unless `serial` is given (`-set_serial`, e.g. `0x0a1b`).
 */
export function opensslSign(
  csrPem: string,
  ca: { certPem: string; keyPem: string },
  days = 30,
  serial?: string,
): string {
  const { outputs } = openssl(
    [
      ...["x509", "-req", "-in", "csr.pem", "-CA", "ca.pem", "-CAkey", "ca.key"],
      ...(serial === undefined ? ["-CAcreateserial"] : ["-set_serial", serial]),
      ...["-days", String(days), "-sha256", "-out", "cert.pem"],
    ],
    { files: { "csr.pem": csrPem, "ca.pem": ca.certPem, "ca.key": ca.keyPem }, outputs: ["cert.pem"] },
  );
  return outputs["cert.pem"]!;
}

/** `openssl verify -CAfile`: true when the chain verifies. */
export function opensslVerify(caPem: string, certPem: string): boolean {
  try {
    openssl(["verify", "-CAfile", "ca.pem", "cert.pem"], { files: { "ca.pem": caPem, "cert.pem": certPem } });
    return true;
  } catch {
    return false;
  }
}

/** Lowercase hex SHA-256 of `openssl x509 -outform DER`: the AWS IoT certificate id. */
export function opensslCertificateId(certPem: string): string {
  const der = openssl(["x509", "-outform", "DER"], { input: certPem }).stdout;
  return createHash("sha256").update(der).digest("hex");
}

/** Lowercase hex SHA-256 of the SPKI DER of a CSR's key. */
export function opensslCsrKeyFingerprint(csrPem: string): string {
  const pub = openssl(["req", "-pubkey", "-noout"], { input: csrPem }).stdout.toString();
  const der = openssl(["pkey", "-pubin", "-outform", "DER"], { input: pub }).stdout;
  return createHash("sha256").update(der).digest("hex");
}

/** `openssl x509 -noout <flags>` output, e.g. ["-serial"] or ["-text"]. */
export function opensslX509(certPem: string, flags: string[]): string {
  return openssl(["x509", "-noout", ...flags], { input: certPem }).stdout.toString();
}

/** Flips one byte of the signature at the end of a PEM CSR or certificate (proof-of-possession test). */
export function tamperSignature(pem: string): string {
  const label = /-----BEGIN ([A-Z ]+)-----/.exec(pem)?.[1] ?? "CERTIFICATE REQUEST";
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
  der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
