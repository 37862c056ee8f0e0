import { randomUUID } from "node:crypto";
import { ConflictError } from "../errors.ts";
import { type Device, type DeviceClaim, isClaimActive } from "./model.ts";
import type { Registry } from "./ports.ts";

/**
 * Takes the provisioning claim on a device for one flow (vending or JITR): refuses while another
 * flow's claim is live; a stale claim that recorded a certificate (a vending flow that crashed after
 * creating it) has that certificate destroyed first; the claim itself is a conditional write, so of
 * concurrent flows exactly one wins and the others get PROVISIONING_IN_PROGRESS.
 */
export async function takeClaim(
  deps: { registry: Registry; iot: { destroyCertificate(certificateId: string): Promise<void> } },
  device: Device,
  options: { publicKeyFingerprint: string; ttlMs: number; now: number },
): Promise<DeviceClaim> {
  if (isClaimActive(device, options.now)) throw inProgress();
  if (device.claim?.certificateId) await deps.iot.destroyCertificate(device.claim.certificateId);
  const claim = {
    id: randomUUID(),
    publicKeyFingerprint: options.publicKeyFingerprint,
    expiresAt: options.now + options.ttlMs,
  };
  if (!(await deps.registry.claimDevice(device, claim, options.now))) throw inProgress();
  return claim;
}

function inProgress(): ConflictError {
  return new ConflictError("PROVISIONING_IN_PROGRESS", "Provisioning of this device is in progress.");
}
