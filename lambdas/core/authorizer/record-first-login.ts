import { describeError } from "../describe-error.ts";
import type { Logger } from "../logger.ts";
import type { Product } from "../registry/model.ts";
import type { Registry } from "../registry/ports.ts";
import type { IotProvisioning } from "../vending/ports.ts";

/**
 * A secret-born device's first successful login makes it a thing (named after its serial, with
 * attributes serialNumber, productKey, authMode) and commits the registry record (`provisioned`).
 * Done by the authorizer itself, once per device: a warm login of a provisioned device costs one
 * read and returns at once; only the very first pays for CreateThing and one conditional write
 * (chosen over a presence-event rule because AWS IoT's lifecycle events do not say which device a
 * custom-authorized connection is, except through the client id, which the device chooses).
 * Idempotent; an existing thing this backend did not make is left alone and the commit skipped
 * (logged): a device never takes over another thing. Failures are logged and retried on the next
 * login; the login itself is not refused for them.
 */
export async function recordFirstLogin(
  deps: { registry: Registry; iot: Pick<IotProvisioning, "createThing" | "describeThing">; logger: Logger },
  product: Pick<Product, "productKey" | "mqttAuth">,
  serialNumber: string,
  at: string,
): Promise<boolean> {
  try {
    const existing = await deps.iot.describeThing(serialNumber);
    if (existing && existing.attributes.serialNumber !== serialNumber) {
      deps.logger.error("first login: a thing of the device's name exists that this backend did not make", {
        serialNumber,
      });
      return false;
    }
    if (!existing) {
      await deps.iot.createThing(serialNumber, {
        serialNumber,
        productKey: product.productKey,
        authMode: product.mqttAuth?.scheme ?? "certificate",
      });
    }
    return await deps.registry.commitSecretLogin(serialNumber, serialNumber, at);
  } catch (error) {
    deps.logger.warn("first login: not recorded yet (retried on the next login)", {
      serialNumber,
      error: describeError(error),
    });
    return false;
  }
}
