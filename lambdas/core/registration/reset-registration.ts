import { ConflictError, NotFoundError, ValidationError } from "../errors.ts";
import type { Device } from "../registry/model.ts";
import type { Registry } from "../registry/ports.ts";

/**
 * `onramp registry reset SERIAL`: lets a secret-born device register (or activate) again, for
 * example after a factory reset erased its secret. Its issued credential is forgotten (a secret or
 * token that registration or activation issued; a secret an operator imported is kept) and the
 * device goes back to `registered`. Only for products with dynamic registration or activation.
 */
export async function resetRegistration(deps: { registry: Registry }, serialNumber: string): Promise<Device> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const device = await deps.registry.getDevice(serialNumber);
    if (!device) throw new NotFoundError(`No device with serial number ${serialNumber}.`);
    const product = await deps.registry.getProduct(device.productKey);
    const auth = product?.mqttAuth;
    const dynamic = auth?.scheme === "aliyun-dynamic" || (auth?.scheme === "enos" && auth.dynamicActivation);
    if (!dynamic) {
      throw new ValidationError(
        `Product ${device.productKey} has no dynamic registration or activation: there is nothing to reset.`,
      );
    }
    if (device.status === "disabled" || device.status === "revoked") {
      throw new ConflictError("WRONG_STATUS", `Device ${serialNumber} is ${device.status}; enable it first.`);
    }
    const forgetSecret = auth?.scheme === "aliyun-dynamic" || device.credentialIssuedAt !== undefined;
    if (await deps.registry.resetRegistration(serialNumber, device.version, { forgetSecret })) {
      return (await deps.registry.getDevice(serialNumber)) ?? device;
    }
  }
  throw new ConflictError("BUSY", `Device ${serialNumber} keeps changing; retry.`, 1);
}
