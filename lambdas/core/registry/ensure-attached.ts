import type { CertificateAttachments } from "../vending/ports.ts";
import type { Device, Product } from "./model.ts";
import {
  type DeviceThingDeps,
  type DeviceThingOptions,
  registerDeviceThing,
} from "./register-device-thing.ts";

/**
 * Makes a committed provisioning complete again: the certificate attached to the device's thing
 * and at least one policy attached to it. A flow that failed after its commit (a crash, a lost
 * response followed by an undo) can leave either missing; RegisterThing with the product's
 * template redoes both idempotently. Nothing is called when the state is already complete.
 */
export async function ensureAttached(
  deps: DeviceThingDeps,
  product: Product,
  device: Device,
  certificate: CertificateAttachments,
  options: Pick<DeviceThingOptions, "path"> = {},
): Promise<void> {
  const thingName = device.thingName ?? device.serialNumber;
  // `policies` includes those the thing inherits from its groups (the direct path's grant).
  if (certificate.things.includes(thingName) && certificate.policies.length > 0) return;
  await registerDeviceThing(deps, product, device.serialNumber, certificate.certificateId, {
    ...options,
    certificateArn: certificate.certificateArn,
  });
}
