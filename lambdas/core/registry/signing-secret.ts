import { deriveDeviceSecret } from "#credentials/derived-secret.ts";
import { describeError } from "../describe-error.ts";
import { DependencyUnavailableError, DomainError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Device, Product } from "./model.ts";
import type { SecretStore } from "./ports.ts";
import { openSealedSecret } from "./sealed-secret.ts";

/**
 * The secret a device signs with: its own (sealed in the registry), derived, or the product's.
 * Stored data that cannot yield a secret (a tampered seal, a product secret that is not base64)
 * is a server-side fault: 503, logged without the data.
 */
export async function deviceSigningSecret(
  deps: { secrets: SecretStore; logger: Logger },
  product: Product,
  device: Device | undefined,
  serialNumber: string,
): Promise<string | undefined> {
  try {
    if (device?.sealedSecret && device.productKey === product.productKey) {
      return await openSealedSecret(device.sealedSecret, deps.secrets, serialNumber);
    }
    const productSecret = await deps.secrets.getProductSecret(product.productKey);
    if (productSecret === undefined) return undefined;
    return product.authMode === "device-secret"
      ? deriveDeviceSecret(productSecret, serialNumber)
      : productSecret;
  } catch (error) {
    if (error instanceof DomainError) throw error;
    deps.logger.error("cannot compute the signing secret", {
      serialNumber,
      productKey: product.productKey,
      error: describeError(error),
    });
    throw new DependencyUnavailableError("The device's signing secret is unavailable.");
  }
}
