import { ConflictError } from "../errors.ts";
import type { IotProvisioning, TemplateSource } from "../vending/ports.ts";
import type { Product } from "./model.ts";

/** Why a thing was refused: it exists and this backend did not make it for this device. */
export class ThingNameTakenError extends ConflictError {
  constructor(thingName: string) {
    super(
      "THING_NAME_TAKEN",
      `A thing named ${thingName} exists that was not provisioned for this device; an operator must rename or delete it.`,
    );
  }
}

export type DeviceThingDeps = {
  iot: Pick<IotProvisioning, "registerThing" | "describeThing">;
  templates: TemplateSource;
};

/**
 * RegisterThing with the product's template for one device's certificate: the thing (named after
 * the serial by the shipped templates), the policy, the attachment. A device certificate is never
 * attached to a thing this backend did not make for that serial: an existing thing of that name
 * must carry the `serialNumber` attribute our templates write, or ThingNameTakenError is thrown
 * before anything is changed (the templates REPLACE or MERGE attributes, which would otherwise take
 * an unrelated thing over). `created` says whether the thing is new (only then may an undo delete it).
 */
export async function registerDeviceThing(
  deps: DeviceThingDeps,
  product: Product,
  serialNumber: string,
  certificateId: string,
): Promise<{ thingName: string; created: boolean }> {
  const existing = await deps.iot.describeThing(serialNumber);
  if (existing && existing.attributes.serialNumber !== serialNumber)
    throw new ThingNameTakenError(serialNumber);
  const template = await deps.templates.load(product.templateName);
  const registered = await deps.iot.registerThing(
    template.body,
    template.pick({
      SerialNumber: serialNumber,
      ProductKey: product.productKey,
      CertificateId: certificateId,
    }),
  );
  return { thingName: registered.thingArn?.split("/").pop() || serialNumber, created: !existing };
}
