import { type MqttConnectRequest, parseMqttConnect, verifyMqttConnect } from "#credentials/mqtt-connect.ts";
import { constantTimeEqual, hashHex } from "#credentials/sign.ts";
import { describeError } from "../describe-error.ts";
import type { Logger } from "../logger.ts";
import { type Device, type Product, productKeySchema, serialNumberSchema } from "../registry/model.ts";
import type { Registry, SecretStore } from "../registry/ports.ts";
import { deviceSigningSecret } from "../registry/signing-secret.ts";
import { isPolicySafeClientId, renderConnectionPolicy } from "./connection-policy.ts";

/** The CONNECT fields as AWS IoT hands them to a custom authorizer (password base64). */
export type ConnectCredentials = { clientId?: string; username?: string; password?: string };

/** Why a connection was refused (logged; the device only sees a refused CONNECT). */
export type ConnectDenialReason =
  | "malformed"
  | "unknown-product"
  | "not-a-secret-product"
  | "scheme-not-allowed"
  | "unknown-device"
  | "device-disabled"
  | "device-revoked"
  | "not-registered-yet"
  | "bad-credentials"
  | "stale-timestamp"
  | "unsafe-client-id"
  | "error";

/** A connection's session as the authorizer grants it. */
export type ConnectGrant = {
  serialNumber: string;
  productKey: string;
  /** `[a-zA-Z0-9]{1,128}`: AWS IoT's rule for principalId. */
  principalId: string;
  policyDocuments: string[];
  /** The activation-only session of an EnOS SecureMode 3 login. */
  activationOnly: boolean;
  /** The device is still `registered`: this is its first login (see recordFirstLogin). */
  firstLogin: boolean;
  product: Product;
  /** The request (for the local endpoint's registration pushes). */
  request: MqttConnectRequest;
};

export type ConnectDecision =
  | { allowed: true; grant: ConnectGrant }
  | { allowed: false; reason: ConnectDenialReason };

export type AuthorizerDeps = {
  registry: Pick<Registry, "getDevice" | "getProduct">;
  secrets: SecretStore;
  logger: Logger;
  /** The policy templates (templates/policies/secret-*.json), as text. */
  policies: { device: string; activation: string };
  clock?: () => number;
};

/** Default accepted |now − timestamp| for timestamped logins (the credentials module's 15 min). */
const DEFAULT_WINDOW_SECONDS = 15 * 60;

/**
 * The decision of the AWS IoT custom authorizer for secret-born devices (Alibaba one secret per
 * device, after dynamic registration `connwl` with a device token, EnOS SecureMode 2 and 3). One
 * registry read of the product (cached) and one of the device; the secret comes from the device's
 * sealed secret, the product secret (derived per device, or itself for SecureMode 3 activation);
 * the check is constant-time; a timestamp outside the product's window is refused. Registration
 * logins (`register`, `regnwl`) are not connections: AWS IoT cannot push their answer (see
 * README "Devices with a secret"), so the authorizer refuses them and the local endpoint handles
 * them itself. Never throws: anything unexpected is a denial ("error").
 */
export async function authorizeMqttConnect(
  deps: AuthorizerDeps,
  credentials: ConnectCredentials,
  options: { passwordEncoding: "base64" | "raw" } = { passwordEncoding: "base64" },
): Promise<ConnectDecision> {
  try {
    return await decide(deps, credentials, options.passwordEncoding);
  } catch (error) {
    deps.logger.error("authorizer: unexpected failure, denied", { error: describeError(error) });
    return { allowed: false, reason: "error" };
  }
}

async function decide(
  deps: AuthorizerDeps,
  credentials: ConnectCredentials,
  passwordEncoding: "base64" | "raw",
): Promise<ConnectDecision> {
  const deny = (reason: ConnectDenialReason): ConnectDecision => ({ allowed: false, reason });
  let request: MqttConnectRequest;
  try {
    request = parseMqttConnect(
      { clientId: credentials.clientId, username: credentials.username, password: credentials.password },
      { passwordEncoding },
    );
  } catch {
    return deny("malformed");
  }
  const productKey = request.productKey;
  const deviceName = request.scheme === "enos-sign" ? request.deviceKey : request.deviceName;
  if (!productKeySchema.safeParse(productKey).success || !serialNumberSchema.safeParse(deviceName).success) {
    return deny("malformed");
  }
  if (!isPolicySafeClientId(credentials.clientId ?? "")) return deny("unsafe-client-id");

  const product = await deps.registry.getProduct(productKey);
  if (!product) return deny("unknown-product");
  const auth = product.mqttAuth;
  if (!auth) return deny("not-a-secret-product");
  if (!schemeAllowed(product, request)) return deny("scheme-not-allowed");

  const device = await deps.registry.getDevice(deviceName);
  if (!device || device.productKey !== productKey) return deny("unknown-device");
  if (device.status === "revoked") return deny("device-revoked");
  if (device.status === "disabled") return deny("device-disabled");

  const activationOnly = request.scheme === "enos-sign" && request.secureMode === 3;
  const secret = await loginSecret(deps, product, device, request);
  if (secret === undefined) return deny("not-registered-yet");
  const now = (deps.clock ?? Date.now)();
  const windowMs = (auth.timestampWindowSeconds ?? DEFAULT_WINDOW_SECONDS) * 1000;
  try {
    if (request.scheme === "aliyun-connwl") {
      // The token is kept hashed: compare hashes, in constant time.
      if (!constantTimeEqual(hashHex("sha256", request.password), secret)) return deny("bad-credentials");
    } else {
      verifyMqttConnect(request, secret, {
        now,
        maxClockSkewMs: windowMs,
        requireTimestamp: request.scheme === "enos-sign",
      });
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    return deny(code === "STALE_TIMESTAMP" ? "stale-timestamp" : "bad-credentials");
  }

  const values = { productKey, deviceName, clientId: credentials.clientId ?? "" };
  return {
    allowed: true,
    grant: {
      serialNumber: device.serialNumber,
      productKey,
      principalId: principalIdFor(device.serialNumber),
      policyDocuments: [
        renderConnectionPolicy(activationOnly ? deps.policies.activation : deps.policies.device, values),
      ],
      activationOnly,
      firstLogin: device.status === "registered" && !activationOnly,
      product,
      request,
    },
  };
}

/** Which login schemes a product's mode accepts. */
function schemeAllowed(product: Product, request: MqttConnectRequest): boolean {
  const scheme = product.mqttAuth?.scheme;
  switch (request.scheme) {
    case "aliyun-sign":
      return scheme === "aliyun" || scheme === "aliyun-dynamic";
    case "aliyun-connwl":
      return (
        scheme === "aliyun-dynamic" &&
        product.mqttAuth?.scheme === "aliyun-dynamic" &&
        product.mqttAuth.allowRegnwl
      );
    case "enos-sign":
      return (
        scheme === "enos" &&
        (request.secureMode === 2 ||
          (product.mqttAuth?.scheme === "enos" && product.mqttAuth.dynamicActivation))
      );
    default:
      return false; // register / regnwl: registration, not a session (see above)
  }
}

/**
 * The secret a login is checked against: the device's own (sealed; for dynamic products the one
 * registration issued), derived from the product secret (device-secret products), the product
 * secret itself (EnOS SecureMode 3 activation), or the hash of the issued device token (connwl).
 * Undefined when the device has none yet (a dynamic product's device before registration).
 */
async function loginSecret(
  deps: AuthorizerDeps,
  product: Product,
  device: Device,
  request: MqttConnectRequest,
): Promise<string | undefined> {
  if (request.scheme === "aliyun-connwl") return device.deviceTokenHash;
  if (request.scheme === "enos-sign" && request.secureMode === 3) {
    return deps.secrets.getProductSecret(product.productKey);
  }
  // One secret per product: a device logs in only with the secret registration / activation issued it.
  if (product.authMode === "product-secret" && !device.sealedSecret) return undefined;
  return deviceSigningSecret(deps, product, device, device.serialNumber);
}

/**
 * AWS IoT's principalId is `[a-zA-Z0-9]{1,128}`: the serial's UTF-8 bytes in hex (serials are at
 * most 128 characters of `[A-Za-z0-9:_-]`, so up to 63 characters fit; longer ones use a SHA-256).
 */
export function principalIdFor(serialNumber: string): string {
  const hex = Buffer.from(serialNumber, "utf8").toString("hex");
  return hex.length + 1 <= 128 ? `d${hex}` : `h${hashHex("sha256", serialNumber)}`;
}
