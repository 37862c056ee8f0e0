import { createHash, X509Certificate } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import type { IoTClient } from "@aws-sdk/client-iot";
import type { Command } from "commander";
import { AwsCaRegistry } from "#adapters/iot-ca-registry.ts";
import { createProduct } from "#core/registry/manage-products.ts";
import { type MqttAuth, type Product, productAuthModes, reprovisionPolicies } from "#core/registry/model.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";
import { cliIotClient, type Target, withServices, withTargetOptions } from "../wiring.ts";

type CreateOptions = {
  productKey: string;
  name: string;
  authMode: string;
  allowServerKeys?: boolean;
  reprovision: string;
  template?: string;
  trustCa?: string[];
  mqttAuth?: string;
  allowRegnwl?: boolean;
  dynamicActivation?: boolean;
  timestampWindow?: string;
  json?: boolean;
  endpoints?: string;
};

const mqttAuthSchemes = ["aliyun", "aliyun-dynamic", "enos"] as const;

/** `onramp products create | list` */
export function registerProductsCommands(program: Command): void {
  const products = program
    .command("products")
    .description("Manage products (device families sharing a secret and a template)");

  withTargetOptions(
    products
      .command("create")
      .description(
        "Create a product and its secret; the secret is printed once, keep it in your factory tooling",
      )
      .requiredOption("--product-key <key>", "product key (3-64 letters, digits, '_' or '-')")
      .requiredOption("--name <name>", "display name")
      .option("--auth-mode <mode>", `how devices sign: ${productAuthModes.join(" | ")}`, "device-secret")
      .option("--allow-server-keys", "allow server-made keys for devices that cannot make a CSR")
      .option(
        "--reprovision <policy>",
        `re-provisioning of provisioned devices: ${reprovisionPolicies.join(" | ")}`,
        "never",
      )
      .option("--template <name>", "provisioning template from templates/provisioning", "cvm-device")
      .option(
        "--trust-ca <id-or-file...>",
        "CAs whose device certificates this product accepts: CA certificate ids (as `ca register` prints) or CA certificate files (PEM)",
      )
      .option(
        "--mqtt-auth <scheme>",
        `devices log in over MQTT with a secret (custom authorizer): ${mqttAuthSchemes.join(" | ")}; absent: certificates`,
      )
      .option("--allow-regnwl", "aliyun-dynamic: devices may register without pre-registration (regnwl)")
      .option(
        "--dynamic-activation",
        "enos: SecureMode 3 devices get their device secret from the product secret",
      )
      .option(
        "--timestamp-window <seconds>",
        "with --mqtt-auth: accepted |now - timestamp| of a login (1-86400; default 900)",
      )
      .option("--json", "print JSON")
      .addHelpText(
        "after",
        `
Examples:
  onramp products create --product-key thermo-v2 --name 'Thermostat v2' --auth-mode device-secret
  onramp products create --product-key a1Lamp --name Lamp --mqtt-auth aliyun
  onramp products create --product-key a1Plug --name Plug --auth-mode product-secret --mqtt-auth aliyun-dynamic --allow-regnwl
  onramp products create --product-key enosMeter --name Meter --auth-mode product-secret --mqtt-auth enos --dynamic-activation`,
      ),
  ).action(async (options: CreateOptions) => {
    if (!(productAuthModes as readonly string[]).includes(options.authMode)) {
      throw new CliError(`--auth-mode must be one of ${productAuthModes.join(", ")}`);
    }
    if (!(reprovisionPolicies as readonly string[]).includes(options.reprovision)) {
      throw new CliError(`--reprovision must be one of ${reprovisionPolicies.join(", ")}`);
    }
    const mqttAuth = mqttAuthOption(options);
    const result = await withServices(options, (services, target) =>
      withIotClient(target, (client) =>
        createProduct(
          { ...services, caRegistry: new AwsCaRegistry(client) },
          {
            productKey: options.productKey,
            name: options.name,
            authMode: options.authMode as (typeof productAuthModes)[number],
            allowServerKeys: options.allowServerKeys ?? false,
            reprovision: options.reprovision as (typeof reprovisionPolicies)[number],
            ...(options.template ? { templateName: options.template } : {}),
            ...(options.trustCa ? { trustedCaIds: options.trustCa.map(caCertificateId) } : {}),
            ...(mqttAuth ? { mqttAuth } : {}),
          },
        ),
      ),
    );
    printResult({ ...result.product, productSecret: result.secret, resumed: result.resumed }, options.json);
    if (!options.json) {
      process.stderr.write(
        "\nThe product secret is shown once here; it is stored in the secret store, not the registry.\n",
      );
    }
  });

  withTargetOptions(
    products.command("list").description("List products").option("--json", "print JSON"),
  ).action(async (options: { json?: boolean; endpoints?: string }) => {
    const list = await withServices(options, (services) => services.registry.listProducts());
    if (options.json) {
      process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      return;
    }
    for (const p of list) {
      process.stdout.write(
        `${p.productKey}\t${p.authMode}\t${p.templateName}\treprovision=${p.reprovision}\tmqtt=${mqttAuthLabel(p)}\t${p.name}\n`,
      );
    }
  });
}

/** The product's MQTT login mode as one word: `certificate`, `aliyun`, `aliyun-dynamic+regnwl`, `enos+activation`. */
function mqttAuthLabel(product: Product): string {
  const auth = product.mqttAuth;
  if (!auth) return "certificate";
  if (auth.scheme === "aliyun-dynamic") return auth.allowRegnwl ? "aliyun-dynamic+regnwl" : "aliyun-dynamic";
  if (auth.scheme === "enos") return auth.dynamicActivation ? "enos+activation" : "enos";
  return auth.scheme;
}

/** `--mqtt-auth` and its companions as the product's mqttAuth; the combinations that mean nothing are refused. */
function mqttAuthOption(options: CreateOptions): MqttAuth | undefined {
  const scheme = options.mqttAuth;
  if (scheme === undefined) {
    for (const [flag, set] of [
      ["--allow-regnwl", options.allowRegnwl],
      ["--dynamic-activation", options.dynamicActivation],
      ["--timestamp-window", options.timestampWindow !== undefined],
    ] as const) {
      if (set) throw new CliError(`${flag} needs --mqtt-auth (${mqttAuthSchemes.join(", ")}).`);
    }
    return undefined;
  }
  if (!(mqttAuthSchemes as readonly string[]).includes(scheme)) {
    throw new CliError(`--mqtt-auth must be one of ${mqttAuthSchemes.join(", ")}`);
  }
  if (options.allowRegnwl && scheme !== "aliyun-dynamic") {
    throw new CliError(
      "--allow-regnwl is for --mqtt-auth aliyun-dynamic (registration without pre-registration).",
    );
  }
  if (options.dynamicActivation && scheme !== "enos") {
    throw new CliError("--dynamic-activation is for --mqtt-auth enos (SecureMode 3).");
  }
  let timestampWindowSeconds: number | undefined;
  if (options.timestampWindow !== undefined) {
    timestampWindowSeconds = Number(options.timestampWindow);
    if (
      !Number.isInteger(timestampWindowSeconds) ||
      timestampWindowSeconds < 1 ||
      timestampWindowSeconds > 86_400
    ) {
      throw new CliError("--timestamp-window must be a whole number of seconds from 1 to 86400.");
    }
  }
  const window = timestampWindowSeconds === undefined ? {} : { timestampWindowSeconds };
  if (scheme === "aliyun-dynamic") return { scheme, allowRegnwl: options.allowRegnwl ?? false, ...window };
  if (scheme === "enos") return { scheme, dynamicActivation: options.dynamicActivation ?? false, ...window };
  return { scheme: "aliyun", ...window };
}

/** Runs `fn` with an AWS IoT client for an already resolved target. */
async function withIotClient<T>(target: Target, fn: (client: IoTClient) => Promise<T>): Promise<T> {
  const client = cliIotClient(target);
  try {
    return await fn(client);
  } finally {
    client.destroy();
  }
}

/** A CA certificate id as given, or the id of a CA certificate file (AWS IoT: SHA-256 of the DER). */
function caCertificateId(value: string): string {
  if (!existsSync(value) || !statSync(value).isFile()) return value;
  let der: Buffer;
  try {
    der = new X509Certificate(readFileSync(value)).raw;
  } catch {
    throw new CliError(`--trust-ca ${value}: not a PEM certificate file.`);
  }
  return createHash("sha256").update(der).digest("hex");
}
