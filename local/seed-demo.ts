import type { Services } from "#adapters/services.ts";
import { createProduct, type NewProduct } from "#core/registry/manage-products.ts";
import type { NewDevice } from "#core/registry/ports.ts";
import { sealSecret } from "#core/registry/sealed-secret.ts";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import { deriveDeviceSecret } from "#credentials/derived-secret.ts";

export const DEMO_PRODUCT_KEY = "demo-product";
const DEMO_SERIALS = ["DEMO-0001", "DEMO-0002", "DEMO-0003", "DEMO-0004", "DEMO-0005"];

/**
 * Seeds the demo product and a few serials on first start; later starts find them and only read
 * the secret back. Devices of the demo product sign with secrets derived from the product secret.
 */
export async function seedDemo(services: Services): Promise<{
  productKey: string;
  serials: string[];
  deviceSecret: string;
  deviceSecrets: Record<string, string>;
  secretProducts: SecretDemoProducts;
}> {
  let productSecret = await services.secrets.getProductSecret(DEMO_PRODUCT_KEY);
  if (!(await services.registry.getProduct(DEMO_PRODUCT_KEY))) {
    const created = await createProduct(services, {
      productKey: DEMO_PRODUCT_KEY,
      name: "Demo product (local stack)",
      authMode: "device-secret",
      allowServerKeys: true,
      reprovision: "replace",
    });
    productSecret = created.secret;
    await services.registry.importDevices(
      DEMO_SERIALS.map((serialNumber) => ({ serialNumber, productKey: DEMO_PRODUCT_KEY })),
    );
  }
  const deviceSecrets = Object.fromEntries(
    DEMO_SERIALS.map((serial) => [serial, deriveDeviceSecret(productSecret ?? "", serial)]),
  );
  return {
    productKey: DEMO_PRODUCT_KEY,
    serials: DEMO_SERIALS,
    deviceSecret: deviceSecrets[DEMO_SERIALS[0]!]!,
    deviceSecrets,
    secretProducts: await seedSecretDemos(services),
  };
}

/** The demo products of devices born with a secret (MQTT username/password, custom authorizer). */
export type SecretDemoProducts = {
  /** One secret per device (derived from the product secret), devices pre-registered. */
  aliyun: { productKey: string; deviceSecrets: Record<string, string> };
  /** One secret per product; `register` for the pre-registered names, `regnwl` for any other. */
  dynamic: { productKey: string; productSecret: string; preRegistered: string[] };
  /**
   * EnOS: SecureMode 2 with the device secret (the first device was born with one, imported
   * sealed), SecureMode 3 dynamic activation with the product secret (the others).
   */
  enos: {
    productKey: string;
    productSecret: string;
    deviceSecrets: Record<string, string>;
    toActivate: string[];
  };
};

export const DEMO_ALIYUN_PRODUCT_KEY = "demo-aliyun";
export const DEMO_DYNAMIC_PRODUCT_KEY = "demo-dynamic";
export const DEMO_ENOS_PRODUCT_KEY = "demo-enos";
const ALIYUN_DEVICES = ["lamp-0001", "lamp-0002", "lamp-0003"];
const DYNAMIC_PRE_REGISTERED = ["plug-pre-01", "plug-pre-02"];
const ENOS_BORN_WITH_SECRET = ["meter-0001"];
const ENOS_TO_ACTIVATE = ["meter-0002", "meter-0003"];

/**
 * One demo product per MQTT login mode, each created on its own first start (a data folder from
 * before these demos gets them added). Secrets that must be printed again on later starts are
 * reproducible: derived from the product secret, which the secret store keeps.
 */
async function seedSecretDemos(services: Services): Promise<SecretDemoProducts> {
  const aliyunSecret = await ensureProduct(
    services,
    {
      productKey: DEMO_ALIYUN_PRODUCT_KEY,
      name: "Demo: one secret per device (Alibaba MQTT sign)",
      authMode: "device-secret",
      mqttAuth: { scheme: "aliyun" },
    },
    async () => ALIYUN_DEVICES.map((serialNumber) => ({ serialNumber, productKey: DEMO_ALIYUN_PRODUCT_KEY })),
  );
  const dynamicSecret = await ensureProduct(
    services,
    {
      productKey: DEMO_DYNAMIC_PRODUCT_KEY,
      name: "Demo: one secret per product (Alibaba dynamic registration, regnwl allowed)",
      authMode: "product-secret",
      mqttAuth: { scheme: "aliyun-dynamic", allowRegnwl: true },
    },
    async () =>
      DYNAMIC_PRE_REGISTERED.map((serialNumber) => ({ serialNumber, productKey: DEMO_DYNAMIC_PRODUCT_KEY })),
  );
  const enosSecret = await ensureProduct(
    services,
    {
      productKey: DEMO_ENOS_PRODUCT_KEY,
      name: "Demo: EnOS SecureMode 2, and 3 with dynamic activation",
      authMode: "product-secret",
      mqttAuth: { scheme: "enos", dynamicActivation: true },
    },
    async (productSecret) => {
      const keys = await services.secrets.getRegistryKeys();
      return [
        ...ENOS_BORN_WITH_SECRET.map((serialNumber) => ({
          serialNumber,
          productKey: DEMO_ENOS_PRODUCT_KEY,
          sealedSecret: sealSecret(deriveDeviceSecret(productSecret, serialNumber), keys, serialNumber),
        })),
        ...ENOS_TO_ACTIVATE.map((serialNumber) => ({ serialNumber, productKey: DEMO_ENOS_PRODUCT_KEY })),
      ];
    },
  );
  return {
    aliyun: {
      productKey: DEMO_ALIYUN_PRODUCT_KEY,
      deviceSecrets: Object.fromEntries(ALIYUN_DEVICES.map((s) => [s, deriveDeviceSecret(aliyunSecret, s)])),
    },
    dynamic: {
      productKey: DEMO_DYNAMIC_PRODUCT_KEY,
      productSecret: dynamicSecret,
      preRegistered: DYNAMIC_PRE_REGISTERED,
    },
    enos: {
      productKey: DEMO_ENOS_PRODUCT_KEY,
      productSecret: enosSecret,
      deviceSecrets: Object.fromEntries(
        ENOS_BORN_WITH_SECRET.map((s) => [s, deriveDeviceSecret(enosSecret, s)]),
      ),
      toActivate: ENOS_TO_ACTIVATE,
    },
  };
}

/** Creates the product and its devices unless it exists; returns the product secret either way. */
async function ensureProduct(
  services: Services,
  product: NewProduct,
  devices: (productSecret: string) => Promise<NewDevice[]>,
): Promise<string> {
  if (await services.registry.getProduct(product.productKey)) {
    return (await services.secrets.getProductSecret(product.productKey)) ?? "";
  }
  const { secret } = await createProduct(services, product);
  await services.registry.importDevices(await devices(secret));
  return secret;
}

/**
 * The copy-paste commands `npm start` prints for the secret demo products: `onramp device
 * connect` for each mode and `mosquitto_pub -u/-P` with the CONNECT fields computed (Alibaba
 * signed without a timestamp so the line stays valid; EnOS requires one, so its fields are
 * computed when the command runs).
 */
export function secretDemoInstructions(
  demo: SecretDemoProducts,
  endpoint: { mqttPort: number; rootCa: string },
): string {
  const { aliyun, dynamic, enos } = demo;
  const tls = `--cafile ${endpoint.rootCa} -h localhost -p ${endpoint.mqttPort}`;
  const [lamp = "", lamp2 = lamp] = Object.keys(aliyun.deviceSecrets);
  const lampSecret = aliyun.deviceSecrets[lamp] ?? "";
  const lamp2Fields = buildAliyunMqttCredentials({
    productKey: aliyun.productKey,
    deviceName: lamp2,
    deviceSecret: aliyun.deviceSecrets[lamp2] ?? "",
  });
  const [meter = ""] = Object.keys(enos.deviceSecrets);
  const [toActivate = ""] = enos.toActivate;
  const plug = "plug-0001";
  const fromFile = (field: string) => `"$(node -p 'require("./${plug}.json").${field}')"`;
  const toShell =
    'node -e \'const c=JSON.parse(require("fs").readFileSync(0,"utf8"));for(const k of ["clientId","username","password"])console.log(k+"=\\x27"+c[k]+"\\x27")\'';
  return `Devices born with a secret: MQTT username/password through the custom authorizer (README "Devices with a secret").
  DEMO ONLY - not real secrets.

  ${aliyun.productKey}: one secret per device (Alibaba sign). Devices and their secrets:
${Object.entries(aliyun.deviceSecrets)
  .map(([name, secret]) => `    ${name}  ${secret}`)
  .join("\n")}
    npx onramp device connect --product-key ${aliyun.productKey} --device-name ${lamp} --device-secret '${lampSecret}' \\
      --subscribe '/${aliyun.productKey}/${lamp}/user/#' --publish /${aliyun.productKey}/${lamp}/user/update --message '{"on":1}'
    mosquitto_pub ${tls} \\
      -i '${lamp2Fields.clientId}' -u '${lamp2Fields.username}' \\
      -P '${lamp2Fields.password}' -t /${aliyun.productKey}/${lamp2}/user/update -m '{"on":1}'
    (signed without a timestamp, so this line keeps working; devices sign with one: npx onramp creds aliyun-mqtt)

  ${dynamic.productKey}: one secret per product, dynamic registration (regnwl allowed; pre-registered for register: ${dynamic.preRegistered.join(", ")}).
    Product secret: ${dynamic.productSecret}
    npx onramp device connect --product-key ${dynamic.productKey} --device-name ${plug} --product-secret '${dynamic.productSecret}' \\
      --regnwl --save ${plug}.json --publish /${dynamic.productKey}/${plug}/user/update --message '{"on":1}'
    mosquitto_pub ${tls} \\
      -i ${fromFile("clientId")}'|securemode=-2,authType=connwl|' -u '${plug}&${dynamic.productKey}' \\
      -P ${fromFile("deviceToken")} -t /${dynamic.productKey}/${plug}/user/update -m '{"on":1}'
    npx onramp device connect --product-key ${dynamic.productKey} --device-name ${dynamic.preRegistered[0]} --product-secret '${dynamic.productSecret}' \\
      --register --https --save ${dynamic.preRegistered[0]}.json
    (registration is once: after the device connected, again only after npx onramp registry reset ${plug})

  ${enos.productKey}: EnOS SecureMode 2 (device secret) and 3 (product secret, dynamic activation; to activate: ${enos.toActivate.join(", ")}).
    Product secret: ${enos.productSecret}
    npx onramp device connect --enos --product-key ${enos.productKey} --device-name ${toActivate} --product-secret '${enos.productSecret}' \\
      --save ${toActivate}.json --publish /sys/${enos.productKey}/${toActivate}/thing/measurepoint/post --message '{}'
    ${meter} was born with device secret ${enos.deviceSecrets[meter] ?? ""} (EnOS signs with a timestamp: fields computed now)
    eval "$(npx onramp creds enos-mqtt --product-key ${enos.productKey} --device-key ${meter} --secret '${enos.deviceSecrets[meter] ?? ""}' --json \\
      | ${toShell})"
    mosquitto_pub ${tls} -i "$clientId" -u "$username" -P "$password" \\
      -t /sys/${enos.productKey}/${meter}/thing/measurepoint/post -m '{}'
`;
}
