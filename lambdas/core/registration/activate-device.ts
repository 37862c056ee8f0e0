import { randomBytes } from "node:crypto";
import { ConflictError, DeviceNotAllowedError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Registry, SecretStore } from "../registry/ports.ts";
import { sealSecret } from "../registry/sealed-secret.ts";
import { deviceSigningSecret } from "../registry/signing-secret.ts";

/** Seed 000's `thing.activate.info` message, which carries the device secret. */
export type ActivationInfo = {
  id: string;
  version: "1.0";
  method: "thing.activate.info";
  params: { assetId: string; productKey: string; deviceKey: string; deviceSecret: string };
};

/**
 * EnOS dynamic activation (SecureMode 3, seed 000): a device that proved the product secret gets
 * its own device secret, then logs in with SecureMode 2. The secret is created once and stored
 * sealed (a repeated activation answers the same one, so a device that lost the answer retries
 * safely); an imported device secret is answered as is. Shared by the MQTT endpoint and the CoAP
 * gateway. The caller has already verified the product-secret login.
 */
export async function activateDevice(
  deps: { registry: Registry; secrets: SecretStore; logger: Logger; clock?: () => number },
  request: { productKey: string; deviceKey: string; id?: string },
): Promise<ActivationInfo> {
  const product = await deps.registry.getProduct(request.productKey);
  const auth = product?.mqttAuth;
  if (!product || auth?.scheme !== "enos" || !auth.dynamicActivation)
    throw new DeviceNotAllowedError("unknown");
  for (let attempt = 0; attempt < 5; attempt++) {
    const device = await deps.registry.getDevice(request.deviceKey);
    if (!device || device.productKey !== request.productKey) throw new DeviceNotAllowedError("unknown");
    if (device.status === "disabled" || device.status === "revoked")
      throw new DeviceNotAllowedError(device.status);
    let deviceSecret: string;
    if (device.sealedSecret || product.authMode === "device-secret") {
      // Its own secret (imported, or issued by an earlier activation), or the derived one.
      const known = await deviceSigningSecret({ ...deps }, product, device, device.serialNumber);
      if (known === undefined) throw new DeviceNotAllowedError("unknown");
      deviceSecret = known;
    } else {
      deviceSecret = randomBytes(24).toString("base64url");
      const sealed = sealSecret(deviceSecret, await deps.secrets.getRegistryKeys(), device.serialNumber);
      const at = new Date((deps.clock ?? Date.now)()).toISOString();
      if (
        !(await deps.registry.issueCredential(
          device.serialNumber,
          device.version,
          { sealedSecret: sealed },
          at,
        ))
      ) {
        continue; // a concurrent activation issued one: answer that one
      }
      deps.logger.info("dynamic activation", {
        productKey: request.productKey,
        deviceKey: request.deviceKey,
      });
    }
    return {
      id: request.id ?? "1",
      version: "1.0",
      method: "thing.activate.info",
      params: {
        assetId: device.serialNumber,
        productKey: request.productKey,
        deviceKey: request.deviceKey,
        deviceSecret,
      },
    };
  }
  throw new ConflictError("ACTIVATION_IN_PROGRESS", "Activation of this device is in progress; retry.", 1);
}
