/**
 * The PSK a CoAP device's DTLS handshake is checked against (seed 000): the identity
 * `{ProductKey},{DeviceKey},{SecureMode},{Lifetime}` is parsed by the credentials module; SecureMode
 * 2 takes the device's secret (the same one the MQTT authorizer checks: deviceSigningSecret),
 * SecureMode 3 the product secret, only for EnOS products with dynamic activation. Anything else
 * (a malformed identity, an unknown product or device, a disabled or revoked device, a device of
 * a one-secret-per-product product that was never activated) has no key: the handshake then fails
 * exactly like a wrong key, and the device learns nothing about which it was.
 */
import { type Device, type Product, productKeySchema, serialNumberSchema } from "#core/registry/model.ts";
import { deviceSigningSecret } from "#core/registry/signing-secret.ts";
import { type EnosPskIdentity, enosPskKey, parseEnosPskIdentity } from "#credentials/enos-psk.ts";
import type { EnosGatewayDeps } from "./ports.ts";

/** A device whose identity has a key; the handshake proves (or not) that it holds it. */
export type EnosPskLogin = {
  identity: EnosPskIdentity;
  product: Product;
  device: Device;
  key: Buffer;
};

/** Why an identity got no key (logged; never told to the device). */
export type EnosPskRefusal =
  | "malformed-identity"
  | "unknown-product"
  | "not-an-enos-product"
  | "dynamic-activation-off"
  | "unknown-device"
  | "device-disabled"
  | "device-revoked"
  | "not-activated-yet"
  | "no-secret";

export type EnosPskDecision = { login: EnosPskLogin } | { refused: EnosPskRefusal };

export async function resolveEnosPsk(
  deps: Pick<EnosGatewayDeps, "registry" | "secrets" | "logger">,
  rawIdentity: Buffer,
): Promise<EnosPskDecision> {
  let identity: EnosPskIdentity;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(rawIdentity);
    identity = parseEnosPskIdentity(text);
  } catch {
    return { refused: "malformed-identity" };
  }
  if (
    !productKeySchema.safeParse(identity.productKey).success ||
    !serialNumberSchema.safeParse(identity.deviceKey).success
  ) {
    return { refused: "malformed-identity" };
  }
  const product = await deps.registry.getProduct(identity.productKey);
  if (!product) return { refused: "unknown-product" };
  const auth = product.mqttAuth;
  if (auth?.scheme !== "enos") return { refused: "not-an-enos-product" };
  if (identity.secureMode === 3 && !auth.dynamicActivation) return { refused: "dynamic-activation-off" };
  const device = await deps.registry.getDevice(identity.deviceKey);
  if (!device || device.productKey !== identity.productKey) return { refused: "unknown-device" };
  if (device.status === "disabled") return { refused: "device-disabled" };
  if (device.status === "revoked") return { refused: "device-revoked" };

  let secret: string | undefined;
  if (identity.secureMode === 3) {
    secret = await deps.secrets.getProductSecret(product.productKey);
  } else {
    // One secret per product: a device logs in with SecureMode 2 only once activation issued its own.
    if (product.authMode === "product-secret" && !device.sealedSecret)
      return { refused: "not-activated-yet" };
    secret = await deviceSigningSecret(deps, product, device, device.serialNumber);
  }
  if (secret === undefined || secret.length === 0) return { refused: "no-secret" };
  return { login: { identity, product, device, key: Buffer.from(enosPskKey(secret)) } };
}
