import type { Services } from "#adapters/services.ts";
import { createProduct, type NewProduct } from "#core/registry/manage-products.ts";
import type { NewDevice } from "#core/registry/ports.ts";
import { sealSecret } from "#core/registry/sealed-secret.ts";
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
