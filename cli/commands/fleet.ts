import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  AttachPolicyCommand,
  CreateKeysAndCertificateCommand,
  DeleteCertificateCommand,
  DescribeEndpointCommand,
  type IoTClient,
  UpdateCertificateCommand,
} from "@aws-sdk/client-iot";
import type { Command } from "commander";
import { FLEET_CLAIM_POLICY_NAME, PROVISIONING_TEMPLATES } from "#templates/catalog.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";
import { DEFAULT_ENDPOINTS_FILE, withIotClient, withTargetOptions } from "../wiring.ts";
import { type NewFile, writeNewFiles } from "./ca.ts";

type ClaimCreateOptions = {
  out: string;
  json?: boolean;
  endpoints?: string;
  aws?: boolean;
};

/** What `fleet claim create` made. */
export type ClaimCertificate = {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  privateKeyPem: string;
};

/**
 * Creates a claim certificate (CreateKeysAndCertificate, ACTIVE) and attaches the claim policy to
 * it. If the policy cannot be attached, the certificate is deactivated and deleted again, so no
 * unusable ACTIVE certificate is left behind.
 */
export async function createClaimCertificate(
  client: IoTClient,
  policyName: string = FLEET_CLAIM_POLICY_NAME,
): Promise<ClaimCertificate> {
  const created = await client.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
  const { certificateId, certificateArn, certificatePem } = created;
  const privateKeyPem = created.keyPair?.PrivateKey;
  if (!certificateId || !certificateArn || !certificatePem || !privateKeyPem) {
    throw new CliError("CreateKeysAndCertificate answered without a certificate or key.");
  }
  try {
    await client.send(new AttachPolicyCommand({ policyName, target: certificateArn }));
  } catch (error) {
    await client
      .send(new UpdateCertificateCommand({ certificateId, newStatus: "INACTIVE" }))
      .then(() => client.send(new DeleteCertificateCommand({ certificateId })))
      .catch(() => undefined);
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new CliError(
      `Cannot attach the claim policy ${policyName} (${message}); the certificate was deleted again. Is the stack deployed (\`cdk deploy\`) or running (\`npm start\`)?`,
    );
  }
  return { certificateId, certificateArn, certificatePem, privateKeyPem };
}

/** `onramp fleet claim create`: a claim certificate for fleet provisioning by claim. */
export function registerFleetCommands(program: Command): void {
  const fleet = program.command("fleet").description("Fleet provisioning by claim (AWS IoT's MQTT API)");
  const claim = fleet.command("claim").description("Claim certificates: shipped in every device's firmware");

  withTargetOptions(
    claim
      .command("create")
      .description(
        `Create a claim certificate and key (CreateKeysAndCertificate, active) with the claim policy ${FLEET_CLAIM_POLICY_NAME} attached; existing files are never overwritten`,
      )
      .option("--out <dir>", "folder for claim.crt, claim.key (mode 0600) and, locally, root-ca.pem", "claim")
      .option("--json", "print JSON (never includes the private key)")
      .addHelpText(
        "after",
        `
The claim certificate may connect with client ids claim-* and use only the fleet provisioning
topics of the ${PROVISIONING_TEMPLATES.fleetClaim} template: every device of a fleet ships the
same one, and the pre-provisioning hook decides which serials it may provision (once each).

Examples:
  onramp fleet claim create --out ./claim
  onramp fleet claim create --out ./claim --aws --region eu-west-1`,
      ),
  ).action(async (options: ClaimCreateOptions) => {
    const paths = {
      certificate: join(options.out, "claim.crt"),
      privateKey: join(options.out, "claim.key"),
      rootCa: join(options.out, "root-ca.pem"),
    };
    for (const path of Object.values(paths)) {
      if (existsSync(path)) throw new CliError(`${path} exists already; refusing to overwrite it.`);
    }
    const made = await withIotClient(options, async (client, target) => {
      const claimCertificate = await createClaimCertificate(client);
      const endpoint = await client
        .send(new DescribeEndpointCommand({ endpointType: "iot:Data-ATS" }))
        .then((out) => out.endpointAddress)
        .catch(() => undefined);
      return { claimCertificate, endpoint, local: target.kind === "local" };
    });
    const { claimCertificate } = made;
    const files: NewFile[] = [
      { path: paths.certificate, content: claimCertificate.certificatePem },
      { path: paths.privateKey, content: claimCertificate.privateKeyPem, mode: 0o600 },
    ];
    // Locally the MQTT endpoint's certificate comes from the stack's root CA (kept next to its
    // endpoints file); on AWS devices trust Amazon Root CA 1.
    const rootCa = made.local ? localRootCaPem(options.endpoints) : undefined;
    if (rootCa) files.push({ path: paths.rootCa, content: rootCa });
    mkdirSync(options.out, { recursive: true });
    writeNewFiles(files);
    printResult(
      {
        certificateId: claimCertificate.certificateId,
        certificateArn: claimCertificate.certificateArn,
        policyName: FLEET_CLAIM_POLICY_NAME,
        templateName: PROVISIONING_TEMPLATES.fleetClaim,
        ...(made.endpoint ? { endpoint: made.endpoint } : {}),
        certificate: paths.certificate,
        privateKey: paths.privateKey,
        ...(rootCa ? { rootCa: paths.rootCa } : {}),
      },
      options.json,
    );
    if (!options.json) {
      process.stderr.write(
        `\nDevices connect with it as client id claim-<serial> and publish to $aws/provisioning-templates/${PROVISIONING_TEMPLATES.fleetClaim}/provision/json (README: "Fleet provisioning by claim").\n`,
      );
    }
  });
}

/**
 * The local stack's root CA: the endpoints file's `rootCa` when it has one, else
 * `<data folder>/iot/root-ca.pem`; undefined when neither is there.
 */
function localRootCaPem(endpointsFile: string | undefined): string | undefined {
  const file = resolve(endpointsFile ?? DEFAULT_ENDPOINTS_FILE);
  try {
    const rootCa = (JSON.parse(readFileSync(file, "utf8")) as { rootCa?: unknown }).rootCa;
    if (typeof rootCa === "string" && rootCa.includes("BEGIN CERTIFICATE")) return rootCa;
  } catch {
    // read below
  }
  try {
    return readFileSync(join(dirname(file), "iot", "root-ca.pem"), "utf8");
  } catch {
    return undefined;
  }
}
