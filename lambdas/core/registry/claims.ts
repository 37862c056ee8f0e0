import { randomUUID } from "node:crypto";
import { ConflictError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { IotProvisioning } from "../vending/ports.ts";
import { type ClaimFlow, type Device, type DeviceClaim, isClaimActive } from "./model.ts";
import type { Registry } from "./ports.ts";

/**
 * The claim/commit protocol every provisioning flow (vending, JITR, fleet provisioning) follows;
 * ARCHITECTURE.md "Claim and commit" tells the whole story. In short:
 * 1. claim: a conditional write on the device's version (registered or provisioned, no live claim);
 * 2. work: certificate, thing, policy in AWS IoT (the certificate stays inactive);
 * 3. commit: a conditional write on the claim (still this one, not cancelled by an operator, the
 *    device still allowed); a lost commit makes the flow undo its work;
 * 4. activate, record the activation, and re-read: an operator's disable/revoke that landed
 *    meanwhile is re-applied to the certificate, so the operator always wins.
 */
export type ClaimDeps = {
  registry: Registry;
  iot: Pick<IotProvisioning, "destroyCertificate" | "inspectCertificate" | "setCertificateStatus">;
  logger?: Logger;
};

/** Seconds a device is told to wait when another flow holds its claim. */
export const IN_PROGRESS_RETRY_AFTER_SECONDS = 2;

/**
 * Takes the provisioning claim on a device for one flow. Refuses while another flow's claim is
 * live; settles a stale one first (see settleStaleClaim); the claim itself is a conditional write,
 * so of concurrent flows exactly one wins and the others get PROVISIONING_IN_PROGRESS (409 with
 * Retry-After).
 */
export async function takeClaim(
  deps: ClaimDeps,
  device: Device,
  options: {
    flow: ClaimFlow;
    publicKeyFingerprint: string;
    ttlMs: number;
    now: number;
    /** A certificate the claim starts with (fleet: the one AWS IoT made for the device). */
    certificateId?: string;
  },
): Promise<DeviceClaim> {
  if (isClaimActive(device, options.now)) throw inProgress();
  const settled = await settleStaleClaim(deps, device, options.now);
  // A stale fleet claim turned out to be a completed provisioning: the device changed under this
  // flow, which must look again (the retry sees the device as provisioned).
  if (settled.version !== device.version) throw inProgress();
  const claim: DeviceClaim = {
    id: randomUUID(),
    flow: options.flow,
    publicKeyFingerprint: options.publicKeyFingerprint,
    expiresAt: options.now + options.ttlMs,
    ...(options.certificateId ? { certificateId: options.certificateId } : {}),
  };
  if (!(await deps.registry.claimDevice(device, claim, options.now))) throw inProgress();
  return claim;
}

/**
 * What to do with a claim that no longer blocks (expired, or cancelled by an operator) before a
 * new flow replaces it:
 * - a fleet claim whose certificate is ACTIVE and attached to the device's thing is a provisioning
 *   that succeeded but whose commit (the device's first connection) was never seen: commit it now;
 * - a certificate a vending flow made and never committed: destroy it;
 * - a JITR claim's certificate is the device's own: left alone (the registry reconciler resumes it).
 * Returns the device as it is afterwards.
 */
export async function settleStaleClaim(deps: ClaimDeps, device: Device, now: number): Promise<Device> {
  const claim = device.claim;
  if (!claim || isClaimActive(device, now)) return device;
  // A JITR claim's certificate is the device's own (burned in): never destroyed; the flow that
  // takes over provisions that same certificate or, for another one, refuses it.
  if (!claim.certificateId || claim.flow === "jitr") return device;
  if (claim.flow === "fleet" && claim.cancelled !== true) {
    const committed = await commitFleetClaim(deps, device, claim, claim.certificateId, now);
    if (committed) return (await deps.registry.getDevice(device.serialNumber)) ?? device;
  }
  deps.logger?.info("stale claim: destroying the certificate it recorded", {
    serialNumber: device.serialNumber,
    certificateId: claim.certificateId,
    flow: claim.flow ?? "vend",
  });
  await deps.iot.destroyCertificate(claim.certificateId);
  return device;
}

/**
 * Commits a fleet provisioning claim once AWS IoT has provisioned its certificate: ACTIVE and
 * attached to a thing. False (nothing written) when the certificate is not there yet, or when
 * the claim can no longer commit (cancelled, replaced, device disabled or revoked).
 */
export async function commitFleetClaim(
  deps: ClaimDeps,
  device: Device,
  claim: DeviceClaim,
  certificateId: string,
  now: number,
): Promise<boolean> {
  const certificate = await deps.iot.inspectCertificate(certificateId);
  const thingName = certificate?.things.includes(device.serialNumber)
    ? device.serialNumber
    : certificate?.things[0];
  if (certificate?.status !== "ACTIVE" || !thingName) return false;
  const committed = await deps.registry.completeClaim(device.serialNumber, claim.id, {
    certificateId,
    thingName,
    publicKeyFingerprint: claim.publicKeyFingerprint,
    at: new Date(now).toISOString(),
  });
  if (!committed) return false;
  // AWS IoT activated it (the template's Status): record that, then let an operator's change win.
  await confirmActivation(deps, device.serialNumber, certificateId);
  return true;
}

/** What an activated device turned out to be after the operator's last word. */
export type ActivationOutcome = "active" | "disabled" | "revoked";

/**
 * The last step of every flow: activate the committed certificate, record the activation, then
 * re-read the device. An operator's disable or revoke that landed after the commit may have set the
 * certificate's status before this activation did; re-reading and re-applying it makes the
 * operator's change win in every interleaving (their registry write always precedes their IoT
 * write, and this re-read follows this activation).
 */
export async function activateCommitted(
  deps: ClaimDeps,
  serialNumber: string,
  certificateId: string,
): Promise<ActivationOutcome> {
  await deps.iot.setCertificateStatus(certificateId, "ACTIVE");
  return confirmActivation(deps, serialNumber, certificateId);
}

/**
 * Records the activation of a certificate that is ACTIVE already (the direct path creates it
 * ACTIVE) and re-reads the device, re-applying an operator's disable/revoke (see activateCommitted).
 */
export async function confirmActivation(
  deps: ClaimDeps,
  serialNumber: string,
  certificateId: string,
): Promise<ActivationOutcome> {
  await deps.registry.markActivated(serialNumber, certificateId);
  const after = await deps.registry.getDevice(serialNumber);
  if (after?.status === "disabled" || after?.status === "revoked") {
    await deps.iot.setCertificateStatus(certificateId, after.status === "revoked" ? "REVOKED" : "INACTIVE");
    deps.logger?.warn("operator change applied after activation", {
      serialNumber,
      certificateId,
      status: after.status,
    });
    return after.status;
  }
  return "active";
}

export function inProgress(): ConflictError {
  return new ConflictError(
    "PROVISIONING_IN_PROGRESS",
    "Provisioning of this device is in progress.",
    IN_PROGRESS_RETRY_AFTER_SECONDS,
  );
}
