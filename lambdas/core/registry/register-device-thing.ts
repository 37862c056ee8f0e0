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

/** The calls of the direct path, needed only by a flow that opts in (`path: "product"`). */
type DirectPathIot = {
  [K in
    | "createThing"
    | "attachThingPrincipal"
    | "addThingToPolicyGroup"
    | "deleteThingIfUnused"]?: IotProvisioning[K];
};

export type DeviceThingDeps = {
  iot: Pick<IotProvisioning, "registerThing" | "describeThing"> & DirectPathIot;
  templates: TemplateSource;
};

/**
 * How a product's devices are provisioned in AWS IoT:
 * - `direct` (products on the shipped `cvm-device` template, the default): CreateThing,
 *   AttachThingPrincipal, and the device policy through the product's thing group
 *   (AddThingToThingGroup; the policy is attached to the group once). These operations have AWS
 *   default quotas of 100 TPS, against 10 TPS for RegisterThing; the result is what the template
 *   makes, except that the policy is inherited from the group instead of attached to the
 *   certificate. AWS IoT applies a thing group's policies to a connection only when its client id
 *   is the thing's name (https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html),
 *   which the device policy demands anyway (`client/${iot:Connection.Thing.ThingName}`).
 * - `template`: RegisterThing with the product's own template, for products that need what a
 *   template does (another policy per certificate, thing types, parameters).
 */
export type ProvisioningPath = "direct" | "template";

/** The template the direct path does call for call (templates/provisioning/cvm-device.json). */
export const DIRECT_PATH_TEMPLATE = "cvm-device";

export function provisioningPath(product: Pick<Product, "templateName">): ProvisioningPath {
  return product.templateName === DIRECT_PATH_TEMPLATE ? "direct" : "template";
}

/** The static thing group that carries a product's device policy on the direct path. */
export function productThingGroupName(productKey: string): string {
  return `onramp-product-${productKey}`;
}

export type DeviceThingOptions = {
  /**
   * `product`: the product's path (direct for the default template). Absent: RegisterThing with the
   * product's template, as before the direct path existed; a flow opts in once its tests and IAM
   * grants cover the direct calls (vending does; JITR and rotation can with this one option).
   */
  path?: "product";
  /** The certificate's ARN, when the flow has it (saves a DescribeCertificate on the direct path). */
  certificateArn?: string;
  /** See registerDeviceThing. */
  grant?: "now" | "later";
};

export type RegisteredThing = {
  thingName: string;
  /** Whether the thing is new (only then may an undo delete it). */
  created: boolean;
  path: ProvisioningPath;
  /** Direct path with `grant: "later"`: the device has no permissions until grantDevicePolicy. */
  granted: boolean;
};

/**
 * The product's provisioning for one device's certificate: the thing (named after the serial), the
 * policy, the attachment, on the product's path (see ProvisioningPath). A device certificate is
 * never attached to a thing this backend did not make for that serial: an existing thing of that
 * name must carry the `serialNumber` attribute our templates write, or ThingNameTakenError is thrown
 * before anything is changed (the templates REPLACE or MERGE attributes, which would otherwise take
 * an unrelated thing over).
 *
 * `grant: "later"` (direct path only) leaves the permissions out: a flow whose certificate is
 * already ACTIVE grants them after its registry commit (grantDevicePolicy), so nothing can act
 * before the registry says it may. Every step is idempotent, so a retry redoes what is missing.
 */
export async function registerDeviceThing(
  deps: DeviceThingDeps,
  product: Product,
  serialNumber: string,
  certificateId: string,
  options: DeviceThingOptions = {},
): Promise<RegisteredThing> {
  const existing = await deps.iot.describeThing(serialNumber);
  if (existing && existing.attributes.serialNumber !== serialNumber)
    throw new ThingNameTakenError(serialNumber);
  if (options.path !== "product" || provisioningPath(product) === "template") {
    const template = await deps.templates.load(product.templateName);
    const registered = await deps.iot.registerThing(
      template.body,
      template.pick({
        SerialNumber: serialNumber,
        ProductKey: product.productKey,
        CertificateId: certificateId,
      }),
    );
    const thingName = registered.thingArn?.split("/").pop() || serialNumber;
    return { thingName, created: !existing, path: "template", granted: true };
  }
  const iot = directPathIot(deps.iot);
  if (!existing) {
    await iot.createThing(serialNumber, { productKey: product.productKey, serialNumber });
  }
  const granted = options.grant !== "later";
  try {
    await iot.attachThingPrincipal(serialNumber, certificateId, options.certificateArn);
    if (granted) await grantDevicePolicy(deps, product, serialNumber);
  } catch (error) {
    // The caller learns nothing of a thing made here when a later step throws: remove it (only
    // when no principal is attached, so a certificate attached meanwhile keeps its thing).
    if (!existing) await iot.deleteThingIfUnused(serialNumber).catch(() => undefined);
    throw error;
  }
  return { thingName: serialNumber, created: !existing, path: "direct", granted };
}

/** Direct path: the device's permissions, through its product's thing group (idempotent). */
export async function grantDevicePolicy(
  deps: Pick<DeviceThingDeps, "iot">,
  product: Product,
  thingName: string,
): Promise<void> {
  await directPathIot(deps.iot).addThingToPolicyGroup(
    thingName,
    productThingGroupName(product.productKey),
    product.policyName,
  );
}

/** The direct path's calls, or a clear error for a flow wired without them (a wiring bug). */
function directPathIot(iot: DeviceThingDeps["iot"]): Required<DirectPathIot> {
  const { createThing, attachThingPrincipal, addThingToPolicyGroup, deleteThingIfUnused } = iot;
  if (!createThing || !attachThingPrincipal || !addThingToPolicyGroup || !deleteThingIfUnused) {
    throw new Error(
      "The direct provisioning path needs createThing, attachThingPrincipal, addThingToPolicyGroup and deleteThingIfUnused.",
    );
  }
  return {
    createThing: createThing.bind(iot),
    attachThingPrincipal: attachThingPrincipal.bind(iot),
    addThingToPolicyGroup: addThingToPolicyGroup.bind(iot),
    deleteThingIfUnused: deleteThingIfUnused.bind(iot),
  };
}
