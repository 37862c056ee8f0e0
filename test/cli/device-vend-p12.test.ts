/**
 * `onramp device vend --p12` (issue 13): the RSA key AWS IoT made and its certificate as
 * device.p12 (mode 0600), read back by `openssl pkcs12`; refused, before any request, where the
 * key is not one AWS IoT makes.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { deriveDeviceSecret } from "#credentials/derived-secret.ts";
import { startTestStack } from "#test/support/local-stack.ts";
import { runOnramp } from "#test/support/run-cli.ts";
import { openssl } from "../core/pki/openssl.ts";

describe("onramp device vend --p12", () => {
  let stack: Awaited<ReturnType<typeof startTestStack>>;
  let dir: string;
  let endpoints: string;
  let productSecret: string;

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-p12-"));
    endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify(stack.endpoints));
    const created = await runOnramp(
      ...["products", "create", "--product-key", "p12", "--name", "P12", "--allow-server-keys", "--json"],
      ...["--endpoints", endpoints],
    );
    assert.equal(created.exitCode, 0, String(created.error));
    productSecret = JSON.parse(created.stdout).productSecret;
    const csv = join(dir, "devices.csv");
    writeFileSync(csv, "serialNumber\nP12-1\nP12-2\nP12-3\n");
    const imported = await runOnramp(
      "registry",
      "import",
      csv,
      "--product-key",
      "p12",
      "--endpoints",
      endpoints,
    );
    assert.equal(imported.exitCode, 0, String(imported.error));
  });
  after(async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const vend = (serial: string, ...args: string[]) =>
    runOnramp(
      ...["device", "vend", "--serial", serial, "--product-key", "p12"],
      ...["--secret", deriveDeviceSecret(productSecret, serial), "--endpoints", endpoints, ...args],
    );

  it("writes device.p12 (0600) with the server-made key and certificate; openssl reads it", async () => {
    const out = join(dir, "P12-1");
    const run = await vend(
      "P12-1",
      "--key-mode",
      "server",
      "--out",
      out,
      "--p12",
      "--p12-password",
      "pa55 word",
    );
    assert.equal(run.exitCode, 0, String(run.error));
    const path = join(out, "device.p12");
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const files = { "device.p12": readFileSync(path) as unknown as string };
    const certs = openssl(["pkcs12", "-info", "-nokeys", "-in", "device.p12", "-passin", "pass:pa55 word"], {
      files,
    }).stdout.toString();
    const certificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(certs)?.[0];
    assert.equal(
      certificate?.replace(/\s/g, ""),
      readFileSync(join(out, "device.crt"), "utf8").replace(/\s/g, ""),
    );
    const keys = openssl(["pkcs12", "-in", "device.p12", "-nocerts", "-nodes", "-passin", "pass:pa55 word"], {
      files,
    }).stdout.toString();
    const modulus = (args: string[], input: string) => openssl(args, { input }).stdout.toString();
    assert.equal(
      modulus(["rsa", "-noout", "-modulus"], keys),
      modulus(["rsa", "-noout", "-modulus"], readFileSync(join(out, "device.key"), "utf8")),
    );
    assert.throws(() =>
      openssl(["pkcs12", "-info", "-nokeys", "-in", "device.p12", "-passin", "pass:wrong"], { files }),
    );
  });

  it("without --p12-password: an empty password (like device.key, which is not encrypted)", async () => {
    const out = join(dir, "P12-2");
    const run = await vend("P12-2", "--key-mode", "server", "--out", out, "--p12");
    assert.equal(run.exitCode, 0, String(run.error));
    const files = { "device.p12": readFileSync(join(out, "device.p12")) as unknown as string };
    openssl(["pkcs12", "-info", "-nokeys", "-in", "device.p12", "-passin", "pass:"], { files });
  });

  it("refuses --p12 for a key made here (EC by default) or without --out, before calling the API", async () => {
    const out = join(dir, "P12-3");
    const csr = await vend("P12-3", "--out", out, "--p12");
    assert.notEqual(csr.exitCode, 0);
    assert.match(
      String((csr.error as Error).message),
      /--p12 is for RSA keys made by AWS IoT \(--key-mode server\)/,
    );
    assert.equal(existsSync(out), false);
    const noOut = await vend("P12-3", "--key-mode", "server", "--p12");
    assert.match(String((noOut.error as Error).message), /--p12 needs --out/);
    // The serial was not consumed: a vend without --p12 still works.
    assert.equal((await vend("P12-3", "--out", out)).exitCode, 0);
  });
});
