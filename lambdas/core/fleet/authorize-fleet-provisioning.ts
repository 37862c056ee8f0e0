import type { Logger } from "../logger.ts";
import { type Device, isClaimActive, productKeySchema, serialNumberSchema } from "../registry/model.ts";
import type { Registry } from "../registry/ports.ts";
import type { PreProvisioningEvent } from "./pre-provisioning-event.ts";

/** Why a fleet provisioning request was refused. */
export type FleetDenialReason =
  | "invalid-serial-number"
  | "invalid-product-key"
  | "unknown-device"
  | "unknown-product"
  | "product-mismatch"
  | "device-disabled"
  | "device-revoked"
  | "provisioned-with-another-certificate"
  | "provisioning-in-progress"
  | "registry-error"
  | "deadline-exceeded";

/** The decision about one request: allowed with the parameters to override, or refused and why. */
export type FleetAuthorization =
  | { allowed: true; serialNumber: string; productKey: string; parameterOverrides: Record<string, string> }
  | { allowed: false; reason: FleetDenialReason; serialNumber?: string; error?: string };

/** Settings of the hook. */
export type FleetHookConfig = {
  /**
   * How long the decision may take (ms). AWS IoT waits 5 s for the hook; what is left covers a
   * cold start and the answer's way back.
   */
  deadlineMs: number;
};

/** Deny after 3 s: well inside AWS IoT's 5 s. */
export const defaultFleetHookConfig: FleetHookConfig = { deadlineMs: 3_000 };

/** What the use case needs: reads of the registry only. `clock` is for tests. */
export type FleetHookDeps = {
  registry: Pick<Registry, "getDevice" | "getProduct">;
  logger: Logger;
  config?: FleetHookConfig;
  clock?: () => number;
};

/** Device parameter names in the provision request (and the template's Parameters). */
export const FLEET_PARAMETERS = { serialNumber: "SerialNumber", productKey: "ProductKey" } as const;

/**
 * The fleet provisioning (by claim) pre-provisioning hook's decision. Denies by default; allows
 * only a `SerialNumber` that is in the registry, whose product exists (and equals the request's
 * `ProductKey` when the device sent one), that is `registered` with no other provisioning flow in
 * progress, or already `provisioned` with this very certificate (a retried request). The answer
 * overrides `ProductKey` with the registry's value, so the thing gets the product on record.
 *
 * Nothing is written: AWS IoT may still fail the provisioning after the hook allowed it (template
 * error, throttling, the device never confirming), so marking the device provisioned here could
 * record a certificate that never existed. The registry is to learn of it afterwards, from the
 * device's first connection with the new certificate (not built yet: a topic rule on
 * `$aws/events/presence/connected/+` whose handler checks the thing's principal).
 *
 * Never throws: a registry failure is a denial (`registry-error`), and so is a decision that takes
 * longer than `config.deadlineMs` (`deadline-exceeded`), because AWS IoT fails the request anyway
 * when the hook does not answer within 5 s, and a late answer must never become an allow.
 */
export async function authorizeFleetProvisioning(
  deps: FleetHookDeps,
  request: PreProvisioningEvent,
): Promise<FleetAuthorization> {
  const deadlineMs = (deps.config ?? defaultFleetHookConfig).deadlineMs;
  const serial = serialNumberSchema.safeParse(request.parameters[FLEET_PARAMETERS.serialNumber]);
  const known = serial.success ? { serialNumber: serial.data } : {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<FleetAuthorization>((resolve) => {
    timer = setTimeout(() => resolve({ allowed: false, reason: "deadline-exceeded", ...known }), deadlineMs);
  });
  const decision = decide(deps, request).catch(
    (error: unknown): FleetAuthorization => ({
      allowed: false,
      reason: "registry-error",
      ...known,
      error: error instanceof Error ? error.name : "unknown",
    }),
  );
  try {
    return await Promise.race([decision, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function decide(deps: FleetHookDeps, request: PreProvisioningEvent): Promise<FleetAuthorization> {
  const serial = serialNumberSchema.safeParse(request.parameters[FLEET_PARAMETERS.serialNumber]);
  if (!serial.success) return { allowed: false, reason: "invalid-serial-number" };
  const serialNumber = serial.data;
  const deny = (reason: FleetDenialReason): FleetAuthorization => ({ allowed: false, reason, serialNumber });

  const requestedProduct = request.parameters[FLEET_PARAMETERS.productKey];
  if (requestedProduct !== undefined && !productKeySchema.safeParse(requestedProduct).success) {
    return deny("invalid-product-key");
  }

  const device = await deps.registry.getDevice(serialNumber);
  if (!device) return deny("unknown-device");
  const refusal = statusRefusal(device, request.certificateId, (deps.clock ?? Date.now)());
  if (refusal) return deny(refusal);
  if (requestedProduct !== undefined && requestedProduct !== device.productKey) {
    return deny("product-mismatch");
  }
  const product = await deps.registry.getProduct(device.productKey);
  if (!product) return deny("unknown-product");

  return {
    allowed: true,
    serialNumber,
    productKey: product.productKey,
    parameterOverrides: { [FLEET_PARAMETERS.productKey]: product.productKey },
  };
}

/** Undefined when the device's status lets this certificate be provisioned. */
function statusRefusal(device: Device, certificateId: string, nowMs: number): FleetDenialReason | undefined {
  switch (device.status) {
    case "revoked":
      return "device-revoked";
    case "disabled":
      return "device-disabled";
    case "provisioned":
      // The same certificate again: a provision request retried after the hook allowed it once.
      return device.certificateId === certificateId ? undefined : "provisioned-with-another-certificate";
    case "registered":
      // A vend or JITR flow holds the claim: two flows would attach two certificates to one thing.
      return isClaimActive(device, nowMs) ? "provisioning-in-progress" : undefined;
  }
}
