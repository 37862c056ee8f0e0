import { verifyFleetSignature } from "#credentials/fleet-signature.ts";
import { describeError } from "../describe-error.ts";
import { ConflictError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { readCertificate } from "../pki/certificate-reader.ts";
import { type ClaimDeps, takeClaim } from "../registry/claims.ts";
import {
  type Device,
  isClaimActive,
  type Product,
  productKeySchema,
  serialNumberSchema,
} from "../registry/model.ts";
import type { NonceStore, Registry, SecretStore } from "../registry/ports.ts";
import { deviceSigningSecret } from "../registry/signing-secret.ts";
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
  | "reprovision-proof-invalid"
  | "invalid-certificate"
  | "provisioning-in-progress"
  | "registry-error"
  | "deadline-exceeded";

/** The decision about one request: allowed with the parameters to override, or refused and why. */
export type FleetAuthorization =
  | {
      allowed: true;
      serialNumber: string;
      productKey: string;
      parameterOverrides: Record<string, string>;
      /** The claim this decision took (undefined for a retried request whose claim stands). */
      claimId?: string;
    }
  | { allowed: false; reason: FleetDenialReason; serialNumber?: string; error?: string };

/** Settings of the hook. */
export type FleetHookConfig = {
  /**
   * How long the decision may take (ms). AWS IoT waits 5 s for the hook; what is left covers a
   * cold start and the answer's way back.
   */
  deadlineMs: number;
  /**
   * How long the hook's claim blocks other flows while AWS IoT provisions and the device makes
   * its first connection (the commit). An uncommitted claim past this is settled by the next flow:
   * committed if the certificate is ACTIVE and attached, destroyed otherwise.
   */
  claimTtlMs: number;
  /** The window for a re-provisioning request's timestamp (ms). */
  timestampWindowMs: number;
};

/** Deny after 3 s: well inside AWS IoT's 5 s. */
export const defaultFleetHookConfig: FleetHookConfig = {
  deadlineMs: 3_000,
  claimTtlMs: 10 * 60_000,
  timestampWindowMs: 5 * 60_000,
};

/** What the use case needs. `clock` is for tests. */
export type FleetHookDeps = {
  registry: Registry;
  iot: ClaimDeps["iot"];
  secrets: SecretStore;
  nonces: NonceStore;
  logger: Logger;
  config?: FleetHookConfig;
  clock?: () => number;
};

/** Device parameter names in the provision request (and the template's Parameters). */
export const FLEET_PARAMETERS = {
  serialNumber: "SerialNumber",
  productKey: "ProductKey",
  timestamp: "Timestamp",
  nonce: "Nonce",
  signature: "Signature",
} as const;

/**
 * The fleet provisioning (by claim) pre-provisioning hook's decision, phase one of a two-phase
 * record (ARCHITECTURE.md "Claim and commit"). The claim certificate ships in every firmware image,
 * so it proves nothing about which device asks; a serial is provisioned this way at most once:
 * - a `registered` serial with no live claim gets a claim (a conditional write, the same mechanism
 *   as vending and JITR) that records the new certificate: concurrent requests, one wins;
 * - the same certificate again (a retried provision request) is allowed while its claim stands;
 * - a `provisioned` serial, or one whose claim another certificate holds, is denied, unless the
 *   product's re-provisioning policy is `replace` and the request carries the device's own proof
 *   (Timestamp, Nonce, Signature over the new certificate id with the device's secret);
 * - the commit (phase two) happens when the device first connects with the new certificate
 *   (commit-fleet-provisioning.ts) or when a later flow finds the certificate ACTIVE and attached.
 *
 * Never throws: any failure is a denial (`registry-error`), and so is a decision that takes longer
 * than `config.deadlineMs` (`deadline-exceeded`); a claim taken by a decision that came too late is
 * released, since AWS IoT denied the request already.
 */
export async function authorizeFleetProvisioning(
  deps: FleetHookDeps,
  request: PreProvisioningEvent,
): Promise<FleetAuthorization> {
  const deadlineMs = (deps.config ?? defaultFleetHookConfig).deadlineMs;
  const serial = serialNumberSchema.safeParse(request.parameters[FLEET_PARAMETERS.serialNumber]);
  const known = serial.success ? { serialNumber: serial.data } : {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  const deadline = new Promise<FleetAuthorization>((resolve) => {
    timer = setTimeout(() => {
      late = true;
      resolve({ allowed: false, reason: "deadline-exceeded", ...known });
    }, deadlineMs);
  });
  const decision = decide(deps, request).then(
    async (result): Promise<FleetAuthorization> => {
      if (late && result.allowed && result.claimId) {
        await deps.registry.releaseClaim(result.serialNumber, result.claimId).catch(() => undefined);
      }
      return result;
    },
    (error: unknown): FleetAuthorization => ({
      allowed: false,
      reason: "registry-error",
      ...known,
      error: describeError(error),
    }),
  );
  try {
    return await Promise.race([decision, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function decide(deps: FleetHookDeps, request: PreProvisioningEvent): Promise<FleetAuthorization> {
  const config = deps.config ?? defaultFleetHookConfig;
  const now = (deps.clock ?? Date.now)();
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
  if (device.status === "revoked") return deny("device-revoked");
  if (device.status === "disabled") return deny("device-disabled");
  if (requestedProduct !== undefined && requestedProduct !== device.productKey) {
    return deny("product-mismatch");
  }
  const product = await deps.registry.getProduct(device.productKey);
  if (!product) return deny("unknown-product");
  const allow = (claimId?: string): FleetAuthorization => ({
    allowed: true,
    serialNumber,
    productKey: product.productKey,
    parameterOverrides: { [FLEET_PARAMETERS.productKey]: product.productKey },
    ...(claimId ? { claimId } : {}),
  });

  const { certificateId } = request;
  // A retried provision request for the certificate this serial's claim (or record) already names.
  if (
    isClaimActive(device, now) &&
    device.claim?.flow === "fleet" &&
    device.claim.certificateId === certificateId
  ) {
    return allow();
  }
  if (device.status === "provisioned" && device.certificateId === certificateId) return allow();

  if (device.status === "provisioned") {
    if (product.reprovision !== "replace") return deny("provisioned-with-another-certificate");
    if (!(await hasReprovisionProof(deps, product, device, request, now, config))) {
      return deny("reprovision-proof-invalid");
    }
  }

  let publicKeyFingerprint: string;
  try {
    publicKeyFingerprint = readCertificate(request.certificatePem).publicKeyFingerprint;
  } catch {
    return deny("invalid-certificate");
  }
  try {
    const claim = await takeClaim(deps, device, {
      flow: "fleet",
      publicKeyFingerprint,
      certificateId,
      ttlMs: config.claimTtlMs,
      now,
    });
    return allow(claim.id);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    // Another flow holds the device, or a stale fleet claim turned out to be a finished
    // provisioning that has now been committed: either way, not this certificate.
    const latest = await deps.registry.getDevice(serialNumber);
    return deny(
      latest?.status === "provisioned" ? "provisioned-with-another-certificate" : "provisioning-in-progress",
    );
  }
}

/**
 * The proof a re-provisioning needs: the device's own secret over the new certificate id, fresh
 * (timestamp window) and single-use (nonce), as the vending API checks it.
 */
async function hasReprovisionProof(
  deps: FleetHookDeps,
  product: Product,
  device: Device,
  request: PreProvisioningEvent,
  now: number,
  config: FleetHookConfig,
): Promise<boolean> {
  const p = request.parameters;
  const timestamp = Number(p[FLEET_PARAMETERS.timestamp]);
  const nonce = p[FLEET_PARAMETERS.nonce];
  const signature = p[FLEET_PARAMETERS.signature];
  if (!Number.isSafeInteger(timestamp) || !nonce || !/^[A-Za-z0-9_-]{8,64}$/.test(nonce) || !signature) {
    return false;
  }
  const secret = await deviceSigningSecret(deps, product, device, device.serialNumber);
  const fields = {
    serialNumber: device.serialNumber,
    productKey: product.productKey,
    timestamp,
    nonce,
    certificateId: request.certificateId,
  };
  if (secret === undefined || !verifyFleetSignature(fields, secret, signature)) return false;
  if (Math.abs(now - timestamp) > config.timestampWindowMs) return false;
  return deps.nonces.use(
    `fleet/${product.productKey}/${device.serialNumber}`,
    nonce,
    timestamp + config.timestampWindowMs,
    now,
  );
}
