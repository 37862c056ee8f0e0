import { createHash, X509Certificate } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { IoTClient } from "@aws-sdk/client-iot";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { Command } from "commander";
import { DynamoDbProductBinding } from "#adapters/dynamodb-product-binding.ts";
import { AwsCaRegistry } from "#adapters/iot-ca-registry.ts";
import { updateProductBinding } from "#core/binding/product-binding.ts";
import { createProduct } from "#core/registry/manage-products.ts";
import {
  bindingOwnerships,
  DEFAULT_PRODUCT_BINDING,
  type MqttAuth,
  type Product,
  type ProductBinding,
  productAuthModes,
  reprovisionPolicies,
} from "#core/registry/model.ts";
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
  bindingOwnership?: string;
  bindingTokenTtl?: string;
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
      .option(
        "--binding-ownership <mode>",
        `device-user binding: ${bindingOwnerships.join(" | ")} (default ${DEFAULT_PRODUCT_BINDING.ownership})`,
      )
      .option(
        "--binding-token-ttl <seconds>",
        `how long a reported binding token binds, 10-86400 (default ${DEFAULT_PRODUCT_BINDING.tokenTtlSeconds})`,
      )
      .option("--json", "print JSON")
      .addHelpText(
        "after",
        `
Examples:
  onramp products create --product-key thermo-v2 --name 'Thermostat v2' --auth-mode device-secret
  onramp products create --product-key a1Lamp --name Lamp --mqtt-auth aliyun
  onramp products create --product-key a1Plug --name Plug --auth-mode product-secret --mqtt-auth aliyun-dynamic --allow-regnwl
  onramp products create --product-key enosMeter --name Meter --auth-mode product-secret --mqtt-auth enos --dynamic-activation
  onramp products create --product-key a1Plug --name Plug --mqtt-auth aliyun --binding-ownership shared`,
      ),
  ).action(async (options: CreateOptions) => {
    if (!(productAuthModes as readonly string[]).includes(options.authMode)) {
      throw new CliError(`--auth-mode must be one of ${productAuthModes.join(", ")}`);
    }
    if (!(reprovisionPolicies as readonly string[]).includes(options.reprovision)) {
      throw new CliError(`--reprovision must be one of ${reprovisionPolicies.join(", ")}`);
    }
    const mqttAuth = mqttAuthOption(options);
    const change = bindingOption(options);
    const binding = Object.keys(change).length > 0 ? { ...DEFAULT_PRODUCT_BINDING, ...change } : undefined;
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
            ...(binding ? { binding } : {}),
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
    products
      .command("update")
      .description("Change a product's device-user binding setting (existing bindings stay)")
      .requiredOption("--product-key <key>", "the product")
      .option("--binding-ownership <mode>", `${bindingOwnerships.join(" | ")}`)
      .option("--binding-token-ttl <seconds>", "how long a reported binding token binds, 10-86400")
      .option("--json", "print JSON")
      .addHelpText(
        "after",
        `
Example:
  onramp products update --product-key a1Plug --binding-ownership shared --binding-token-ttl 300`,
      ),
  ).action(async (options: CreateOptions) => {
    const change = bindingOption(options);
    if (Object.keys(change).length === 0) {
      throw new CliError(
        "Nothing to change: give --binding-ownership and/or --binding-token-ttl.",
        2,
        "NOTHING_TO_CHANGE",
      );
    }
    const binding = await withServices(options, (services, target) => {
      const client = new DynamoDBClient({
        region: target.region,
        ...(target.credentials ? { credentials: target.credentials } : {}),
        ...(target.dynamodbEndpoint ? { endpoint: target.dynamodbEndpoint } : {}),
      });
      const products = new DynamoDbProductBinding(DynamoDBDocumentClient.from(client), target.tableName);
      return updateProductBinding(
        { registry: services.registry, products },
        options.productKey,
        change,
      ).finally(() => client.destroy());
    });
    printResult({ productKey: options.productKey, binding }, options.json);
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
        `${p.productKey}\t${p.authMode}\t${p.templateName}\treprovision=${p.reprovision}\tmqtt=${mqttAuthLabel(p)}\tbinding=${(p.binding ?? DEFAULT_PRODUCT_BINDING).ownership}\t${p.name}\n`,
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

/** `--binding-ownership` / `--binding-token-ttl` as a change of the product's binding setting. */
function bindingOption(options: CreateOptions): Partial<ProductBinding> {
  const change: Partial<ProductBinding> = {};
  if (options.bindingOwnership !== undefined) {
    if (!(bindingOwnerships as readonly string[]).includes(options.bindingOwnership)) {
      throw new CliError(`--binding-ownership must be one of ${bindingOwnerships.join(", ")}`);
    }
    change.ownership = options.bindingOwnership as ProductBinding["ownership"];
  }
  if (options.bindingTokenTtl !== undefined) {
    const ttl = Number(options.bindingTokenTtl);
    if (!Number.isInteger(ttl) || ttl < 10 || ttl > 86_400) {
      throw new CliError("--binding-token-ttl must be a whole number of seconds from 10 to 86400.");
    }
    change.tokenTtlSeconds = ttl;
  }
  return change;
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
