import { describeError } from "../describe-error.ts";
import { DomainError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { METRIC, type Metrics, noMetrics } from "../metrics.ts";
import { parseCsr } from "../pki/csr.ts";
import { activateCommitted, type ClaimDeps, takeClaim } from "../registry/claims.ts";
import { DEFAULT_ROTATION_GRACE_SECONDS, type Device, type PendingRotation } from "../registry/model.ts";
import type { Registry } from "../registry/ports.ts";
import { type DeviceThingDeps, registerDeviceThing } from "../registry/register-device-thing.ts";
import type { IotProvisioning } from "../vending/ports.ts";

/** What the device sent (its CSR) and who sent it, as the topic rule adds it. */
export type RotationRequest = {
  /** From the topic: `things/{thingName}/certificates/rotate`. */
  thingName: string;
  /** The certificate id the device is connected with (`principal()` in the rule). */
  principal: string;
  csr: string;
  requestId?: string;
};

/** Why a rotation was refused; `TRY_AGAIN` is the only one worth retrying as is. */
export type RotationRefusal = "NOT_ALLOWED" | "INVALID_CSR" | "IN_PROGRESS" | "TRY_AGAIN";

export type RotationAnswer =
  | { accepted: true; certificateId: string; certificatePem: string; switchBy: string; requestId?: string }
  | { accepted: false; code: RotationRefusal; message: string; requestId?: string };

export type RotationDeps = ClaimDeps &
  DeviceThingDeps & {
    registry: Registry;
    iot: ClaimDeps["iot"] &
      DeviceThingDeps["iot"] &
      Pick<IotProvisioning, "createCertificateFromCsr" | "describeCertificate">;
    logger: Logger;
    /** Counts undo steps and undo failures; none when absent. */
    metrics?: Metrics;
    config: { claimTtlMs: number };
    clock?: () => number;
  };

/**
 * Certificate rotation over MQTT: a provisioned device, connected with its current certificate,
 * sends a CSR for a new key (the private key never leaves the device). The new certificate is
 * made, attached to the device's thing with its policy and activated *before* the device gets it;
 * the registry records it as a pending rotation; the old certificate keeps working until the
 * device connects with the new one (rotation's switch, finishRotation) or the product's grace
 * period runs out. The same claim/commit protocol as provisioning: a failure midway destroys the
 * new certificate and leaves the old one untouched; a retry with the same key answers the same
 * certificate; concurrent rotations of one device: one wins; an operator's disable/revoke wins.
 * Never throws: every outcome is an answer for the device.
 */
export async function rotateCertificate(
  deps: RotationDeps,
  request: RotationRequest,
): Promise<RotationAnswer> {
  const refuse = (code: RotationRefusal, message: string): RotationAnswer => ({
    accepted: false,
    code,
    message,
    ...(request.requestId ? { requestId: request.requestId } : {}),
  });
  try {
    return await rotate(deps, request, refuse);
  } catch (error) {
    if (error instanceof DomainError && error.code === "PROVISIONING_IN_PROGRESS") {
      return refuse("IN_PROGRESS", "Another rotation or provisioning of this device is in progress; retry.");
    }
    if (error instanceof DomainError && error.kind === "invalid") return refuse("INVALID_CSR", error.message);
    deps.logger.error("rotation failed", { thingName: request.thingName, error: describeError(error) });
    return refuse("TRY_AGAIN", "The rotation could not be completed; retry with the same CSR.");
  }
}

async function rotate(
  deps: RotationDeps,
  request: RotationRequest,
  refuse: (code: RotationRefusal, message: string) => RotationAnswer,
): Promise<RotationAnswer> {
  const now = (deps.clock ?? Date.now)();
  const device = await deps.registry.getDevice(request.thingName);
  const notAllowed = () => refuse("NOT_ALLOWED", "This certificate may not rotate this device.");
  if (device?.status !== "provisioned" || !device.certificateId) return notAllowed();
  const serialNumber = device.serialNumber;
  // Only the device's own certificate (or the one it is rotating to) may ask.
  if (request.principal !== device.certificateId && request.principal !== device.rotation?.certificateId) {
    return notAllowed();
  }
  const csr = await parseCsr(request.csr);
  if (csr.subject.commonName !== serialNumber) {
    return refuse("INVALID_CSR", "The CSR subject common name (CN) must be the serial number.");
  }
  const fingerprint = csr.publicKeyFingerprint;
  if (fingerprint === device.publicKeyFingerprint) {
    return refuse(
      "INVALID_CSR",
      "A rotation needs a new key pair: this CSR has the current certificate's key.",
    );
  }
  const accepted = (
    certificateId: string,
    certificatePem: string,
    rotation: PendingRotation,
  ): RotationAnswer => ({
    accepted: true,
    certificateId,
    certificatePem,
    switchBy: new Date(rotation.switchBy).toISOString(),
    ...(request.requestId ? { requestId: request.requestId } : {}),
  });

  if (device.rotation?.publicKeyFingerprint === fingerprint) {
    // A retry (the answer was lost): the same certificate again.
    const existing = await deps.iot.describeCertificate(device.rotation.certificateId);
    if (existing && existing.status === "ACTIVE") {
      return accepted(device.rotation.certificateId, existing.certificatePem, device.rotation);
    }
  }
  const product = await deps.registry.getProduct(device.productKey);
  if (!product) return notAllowed();

  const claim = await takeClaim(deps, device, {
    flow: "rotate",
    publicKeyFingerprint: fingerprint,
    ttlMs: deps.config.claimTtlMs,
    now,
  });
  let certificateId: string | undefined;
  try {
    const certificate = await deps.iot.createCertificateFromCsr(csr.pem);
    certificateId = certificate.certificateId;
    await deps.registry.recordClaimCertificate(serialNumber, claim.id, certificateId);
    await registerDeviceThing(deps, product, serialNumber, certificateId);
    await deps.iot.setCertificateStatus(certificateId, "ACTIVE");
    const rotation: PendingRotation = {
      certificateId,
      publicKeyFingerprint: fingerprint,
      previousCertificateId: device.certificateId,
      requestedAt: new Date(now).toISOString(),
      switchBy: now + (product.rotationGraceSeconds ?? DEFAULT_ROTATION_GRACE_SECONDS) * 1000,
    };
    if (!(await deps.registry.commitRotation(serialNumber, claim.id, rotation))) {
      throw new RotationLostError();
    }
    // An operator's disable/revoke that landed after the commit: re-applied to the new certificate.
    const after = await deps.registry.getDevice(serialNumber);
    if (after?.status === "disabled" || after?.status === "revoked") {
      await deps.iot.setCertificateStatus(certificateId, after.status === "revoked" ? "REVOKED" : "INACTIVE");
      return notAllowed();
    }
    deps.logger.info("certificate rotation ready", { serialNumber, certificateId });
    return accepted(certificateId, certificate.certificatePem, rotation);
  } catch (error) {
    deps.logger.warn("rotation failed, undoing", { serialNumber, error: describeError(error) });
    const metrics = deps.metrics ?? noMetrics;
    try {
      if (certificateId) {
        metrics.count(METRIC.undoSteps, { flow: "rotation", step: "destroy-certificate" });
        await deps.iot.destroyCertificate(certificateId);
      }
      metrics.count(METRIC.undoSteps, { flow: "rotation", step: "release-claim" });
      await deps.registry.releaseClaim(serialNumber, claim.id);
    } catch (undoError) {
      metrics.count(METRIC.undoFailures);
      deps.logger.error("rotation undo incomplete; the claim expires and the next flow cleans up", {
        serialNumber,
        certificateId,
        error: describeError(undoError),
      });
    }
    if (error instanceof RotationLostError) return notAllowed();
    throw error;
  }
}

/** The rotation's commit lost: an operator's change, or the device changed meanwhile. */
class RotationLostError extends Error {
  override readonly name = "RotationLostError";
}

/**
 * The switch: the device's certificate becomes the rotated one and the old one is revoked and
 * deleted. Called when the device connects with its new certificate (the lifecycle event), or by
 * the reconciler once `switchBy` has passed (`force`). Idempotent; false when there is nothing to
 * switch for this certificate.
 */
export async function finishRotation(
  deps: ClaimDeps & { logger: Logger },
  device: Device,
  connectedWith: string | undefined,
): Promise<boolean> {
  const rotation = device.rotation;
  if (!rotation || (connectedWith !== undefined && connectedWith !== rotation.certificateId)) return false;
  if (!(await deps.registry.completeRotation(device.serialNumber, rotation))) return false;
  await deps.iot.destroyCertificate(rotation.previousCertificateId);
  // The new certificate is the device's now: the operator's last word applies to it as to any.
  await activateCommitted(deps, device.serialNumber, rotation.certificateId);
  deps.logger.info("certificate rotation finished", {
    serialNumber: device.serialNumber,
    certificateId: rotation.certificateId,
    revoked: rotation.previousCertificateId,
  });
  return true;
}
