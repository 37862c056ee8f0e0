import type { Services } from "#adapters/services.ts";
import { createProduct } from "#core/registry/manage-products.ts";
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
  };
}
