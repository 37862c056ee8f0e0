import { randomBytes } from "node:crypto";
import { hashHex } from "#credentials/sign.ts";
import { ConflictError, DeviceNotAllowedError, NotFoundError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { type Device, productKeySchema, serialNumberSchema } from "../registry/model.ts";
import type { Registry, SecretStore } from "../registry/ports.ts";
import { openSealedSecret, sealSecret } from "../registry/sealed-secret.ts";

/** What a device registering asks for, and the check of its signature (HTTPS form or MQTT). */
export type RegistrationRequest = {
  productKey: string;
  deviceName: string;
  /** `register`: a pre-registered device gets its secret; `regnwl`: a client id and a device token. */
  authType: "register" | "regnwl";
  /** The request's device-side id before the `|` block (regnwl answers it back). */
  clientId?: string;
  /** Throws unless the request is signed with this product secret (constant time). */
  verify(productSecret: string): void;
};

export type RegistrationResult =
  | { authType: "register"; productKey: string; deviceName: string; deviceSecret: string }
  | { authType: "regnwl"; productKey: string; deviceName: string; clientId: string; deviceToken: string };

export type RegistrationDeps = {
  registry: Registry;
  secrets: SecretStore;
  logger: Logger;
  clock?: () => number;
};

/**
 * Within this many ms a repeated registration answers the credential it just issued (so 100
 * concurrent registrations of one device name get one secret); after it, a new one that replaces
 * the old (Alibaba: before activation a device may register again and only the newest is valid).
 */
export const REGISTRATION_REPLAY_MS = 10_000;

/**
 * Alibaba-style dynamic registration (one secret per product, seed 002), shared by the HTTPS
 * endpoint and the local MQTT endpoint. The request is signed with the product secret; `register`
 * needs a pre-registered device name, `regnwl` creates the record when the product allows it.
 * "Register once": once the device has logged in with its credential (`provisioned`), another
 * registration is refused until an operator resets it (`onramp registry reset`). Secrets are kept
 * sealed, tokens hashed (for logins) and sealed (for the replay window). Unknown products, wrong
 * signatures and unknown devices all answer one DeviceNotAllowedError.
 */
export async function registerDevice(
  deps: RegistrationDeps,
  request: RegistrationRequest,
): Promise<RegistrationResult> {
  const { productKey, deviceName, authType } = request;
  if (!productKeySchema.safeParse(productKey).success || !serialNumberSchema.safeParse(deviceName).success) {
    throw new DeviceNotAllowedError("unknown");
  }
  const product = await deps.registry.getProduct(productKey);
  const auth = product?.mqttAuth;
  if (!product || auth?.scheme !== "aliyun-dynamic") throw new DeviceNotAllowedError("unknown");
  const productSecret = await deps.secrets.getProductSecret(productKey);
  try {
    if (productSecret === undefined) throw new Error("no product secret");
    request.verify(productSecret);
  } catch {
    throw new DeviceNotAllowedError("unknown");
  }

  let device = await deps.registry.getDevice(deviceName);
  if (!device && authType === "regnwl" && auth.allowRegnwl) {
    await deps.registry.createDevice({ serialNumber: deviceName, productKey });
    device = await deps.registry.getDevice(deviceName);
  }
  if (authType === "regnwl" && !auth.allowRegnwl) throw new DeviceNotAllowedError("unknown");
  if (!device || device.productKey !== productKey) throw new DeviceNotAllowedError("unknown");
  if (device.status === "disabled" || device.status === "revoked")
    throw new DeviceNotAllowedError(device.status);
  if (device.status === "provisioned") {
    throw new ConflictError(
      "ALREADY_REGISTERED",
      "This device has already registered and logged in; an operator must reset it (onramp registry reset) before it registers again.",
    );
  }

  const clientId = request.clientId ?? `${productKey}.${deviceName}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    const now = (deps.clock ?? Date.now)();
    const replay = await recentCredential(deps, device, authType, now);
    if (replay !== undefined) return answer(request, clientId, replay);
    const fresh = randomBytes(authType === "register" ? 24 : 18).toString("base64url");
    const sealed = sealSecret(fresh, await deps.secrets.getRegistryKeys(), deviceName);
    const issued = await deps.registry.issueCredential(
      deviceName,
      device.version,
      authType === "register"
        ? { sealedSecret: sealed }
        : { deviceTokenHash: hashHex("sha256", fresh), sealedToken: sealed },
      new Date(now).toISOString(),
    );
    if (issued) {
      deps.logger.info("dynamic registration", { productKey, deviceName, authType });
      return answer(request, clientId, fresh);
    }
    // Another registration won the write: answer with what it issued (or look again).
    const latest = await deps.registry.getDevice(deviceName);
    if (!latest) throw new NotFoundError(`No device ${deviceName}.`);
    if (latest.status !== "registered")
      throw new DeviceNotAllowedError(latest.status === "provisioned" ? "unknown" : "disabled");
    device = latest;
  }
  throw new ConflictError(
    "REGISTRATION_IN_PROGRESS",
    "Registration of this device is in progress; retry.",
    1,
  );
}

/** The credential issued within the replay window, opened; undefined when there is none. */
async function recentCredential(
  deps: RegistrationDeps,
  device: Device,
  authType: "register" | "regnwl",
  now: number,
): Promise<string | undefined> {
  if (!device.credentialIssuedAt || now - Date.parse(device.credentialIssuedAt) > REGISTRATION_REPLAY_MS)
    return undefined;
  const sealed = authType === "register" ? device.sealedSecret : device.sealedToken;
  if (!sealed) return undefined;
  return openSealedSecret(sealed, deps.secrets, device.serialNumber);
}

function answer(request: RegistrationRequest, clientId: string, credential: string): RegistrationResult {
  const { productKey, deviceName } = request;
  return request.authType === "register"
    ? { authType: "register", productKey, deviceName, deviceSecret: credential }
    : { authType: "regnwl", productKey, deviceName, clientId, deviceToken: credential };
}
