import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CommanderError } from "commander";
import { CliError } from "#cli/cli-error.ts";
import { evaluateTemplate } from "#core/provisioning-template/index.ts";
import { loadProvisioningTemplate } from "#templates/catalog.ts";
import { runOnramp } from "#test/support/run-cli.ts";

const CERT_ID = "cd".repeat(32);
const dir = mkdtempSync(join(tmpdir(), "onramp-template-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** Runs `onramp <args>` in-process and returns what it printed and what it threw. */
async function run(...args: string[]): Promise<{ stdout: string; error?: unknown }> {
  const { stdout, error } = await runOnramp(...args);
  return error === undefined ? { stdout } : { stdout, error };
}

/** Requires a CliError: one line, no stack trace in the message. */
function cliError(result: { error?: unknown }): CliError {
  assert.ok(result.error instanceof CliError, `expected a CliError, got ${String(result.error)}`);
  assert.ok(!result.error.message.includes("\n"), result.error.message);
  return result.error;
}

describe("onramp template list", () => {
  it("lists the templates with their parameters, and the policy documents", async () => {
    const { stdout, error } = await run("template", "list");
    assert.equal(error, undefined);
    assert.match(stdout, /^ {2}cvm-device +SerialNumber, ProductKey, CertificateId$/m);
    assert.match(stdout, /^ {2}fleet-claim-device +SerialNumber, ProductKey, AWS::IoT::Certificate::Id$/m);
    assert.match(stdout, /^ {2}jitp-device +AWS::IoT::Certificate::CommonName, /m);
    assert.match(stdout, /^ {2}device-policy +created as "onramp-device-policy"$/m);
  });

  it("prints JSON with --json", async () => {
    const { stdout } = await run("template", "list", "--json");
    const listed = JSON.parse(stdout) as {
      templates: { name: string; parameters: string[] }[];
      policies: unknown[];
    };
    assert.deepEqual(
      listed.templates.map((t) => t.name),
      ["cvm-device", "cvm-device-certificate-policy", "fleet-claim-device", "jitp-device"],
    );
    assert.deepEqual(listed.policies, [
      { name: "device-policy", policyName: "onramp-device-policy" },
      { name: "fleet-claim-policy", policyName: "onramp-fleet-claim-policy" },
      // Per-connection documents of the custom authorizer: not created in AWS IoT, so no name.
      { name: "secret-activation-policy" },
      { name: "secret-device-policy" },
    ]);
  });
});

describe("onramp template render", () => {
  it("describes what a shipped template would create", async () => {
    const { stdout, error } = await run(
      "template",
      "render",
      "cvm-device",
      "--param",
      "SerialNumber=SN-0001",
      "--param",
      "ProductKey=pk=lamp",
      "--param",
      `CertificateId=${CERT_ID}`,
    );
    assert.equal(error, undefined);
    const lines = stdout.trimEnd().split("\n");
    assert.equal(lines[0], "template cvm-device would:");
    assert.ok(lines.includes('Thing "SN-0001" (resource thing)'), stdout);
    assert.ok(lines.includes("  attributes: productKey=pk=lamp, serialNumber=SN-0001"), stdout);
    assert.ok(lines.includes(`Certificate (resource certificate): existing certificate ${CERT_ID}`), stdout);
    assert.ok(
      lines.includes(
        'Policy "onramp-device-policy" (resource policy): existing policy, attached to the certificate',
      ),
    );
  });

  it("prints the plan as JSON with --json", async () => {
    const { stdout } = await run(
      "template",
      "render",
      "fleet-claim-device",
      "--param",
      "SerialNumber=SN-3",
      "--cert-id",
      CERT_ID,
      "--json",
    );
    const expected = evaluateTemplate(
      loadProvisioningTemplate("fleet-claim-device"),
      { SerialNumber: "SN-3" },
      { certificate: { id: CERT_ID } },
    );
    assert.deepEqual(JSON.parse(stdout), expected);
  });

  it("passes JITP certificate fields with --cert-*", async () => {
    const { stdout, error } = await run(
      "template",
      "render",
      "jitp-device",
      "--cert-id",
      CERT_ID,
      "--cert-cn",
      "SN-0002",
      "--cert-country",
      "DE",
      "--cert-org",
      "Acme",
    );
    assert.equal(error, undefined);
    assert.match(stdout, /^Thing "SN-0002" \(resource thing\)$/m);
    assert.match(
      stdout,
      /^ {2}attributes: serialNumber=SN-0002, country=DE, organization=Acme, provisionedBy=jitp$/m,
    );
  });

  it("renders a template file", async () => {
    const path = file(
      "mine.json",
      JSON.stringify({ Resources: { p: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "x" } } } }),
    );
    const { stdout } = await run("template", "render", path);
    assert.equal(
      stdout,
      `${path} would:\nPolicy "x" (resource p): existing policy, attached to the certificate\n`,
    );
  });

  it("reports a template error with the file and the failing path", async () => {
    const path = file(
      "bad-ref.json",
      JSON.stringify({
        Resources: { thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { Ref: "Serial" } } } },
      }),
    );
    const error = cliError(await run("template", "render", path));
    assert.equal(
      error.message,
      `${path}: Resources.thing.Properties.ThingName: Ref to unknown parameter "Serial"`,
    );
  });

  it("reports malformed JSON", async () => {
    const path = file("broken.json", '{"Resources": {');
    const { message } = cliError(await run("template", "render", path));
    assert.ok(message.startsWith(`${path}: templateBody: malformed JSON`), message);
  });

  it("reports a missing parameter of a shipped template", async () => {
    const error = cliError(await run("template", "render", "cvm-device", "--param", "SerialNumber=SN-1"));
    assert.equal(
      error.message,
      "template cvm-device: Parameters.ProductKey: no value given for this parameter and it has no Default",
    );
  });

  it("reports a missing file, a directory, and an unknown name", async () => {
    assert.equal(
      cliError(await run("template", "render", join(dir, "nope.json"))).message,
      `cannot read ${join(dir, "nope.json")}: no such file`,
    );
    assert.equal(
      cliError(await run("template", "render", `${dir}/`)).message,
      `cannot read ${dir}/: it is a directory`,
    );
    assert.equal(
      cliError(await run("template", "render", "no-such-template")).message,
      'no template named "no-such-template" (known: cvm-device, cvm-device-certificate-policy, fleet-claim-device, jitp-device) and no such file',
    );
  });

  it("requires --cert-id with the other --cert-* options", async () => {
    const error = cliError(
      await run("template", "render", "jitp-device", "--cert-cn", "SN-1", "--cert-org", "Acme"),
    );
    assert.equal(error.message, "--cert-cn, --cert-org require --cert-id");
  });

  it("rejects a --param that is not key=value, or given twice", async () => {
    for (const args of [
      ["--param", "SerialNumber"],
      ["--param", "=x"],
      ["--param", "A=1", "--param", "A=2"],
    ]) {
      const { error } = await run("template", "render", "cvm-device", ...args);
      assert.ok(error instanceof CommanderError, String(error));
      assert.equal(error.code, "commander.invalidArgument");
    }
  });
});
