import type { Logger } from "../logger.ts";
import { type ClaimDeps, commitFleetClaim } from "../registry/claims.ts";
import { serialNumberSchema } from "../registry/model.ts";
import { finishRotation } from "../rotation/rotate-certificate.ts";

/** What became of a connection event. */
export type FleetCommitOutcome =
  | { outcome: "committed"; serialNumber: string; certificateId: string }
  | { outcome: "already-committed"; serialNumber: string; certificateId: string }
  | { outcome: "rotation-finished"; serialNumber: string; certificateId: string }
  | {
      outcome: "ignored";
      reason: "not-a-device" | "no-fleet-claim" | "other-certificate" | "not-provisioned-yet" | "claim-lost";
    };

/**
 * Phase two of fleet provisioning (and the switch of a certificate rotation, which waits for the
 * same signal): the device's first connection with its new certificate. AWS
 * IoT publishes `$aws/events/presence/connected/{clientId}` with the certificate id as
 * `principalIdentifier`; the device connects as its thing (client id = serial, which the device
 * policy enforces). When the serial's fleet claim names that certificate, and AWS IoT shows it
 * ACTIVE and attached to a thing, the registry is committed: `provisioned`, the certificate, the
 * thing, the activation. Idempotent (the event may repeat or come twice); an operator's disable or
 * revoke that cancelled the claim wins (no commit).
 */
export async function commitFleetProvisioning(
  deps: ClaimDeps & { logger: Logger; clock?: () => number },
  connection: { clientId: string; certificateId: string },
): Promise<FleetCommitOutcome> {
  const serial = serialNumberSchema.safeParse(connection.clientId);
  if (!serial.success) return { outcome: "ignored", reason: "not-a-device" };
  const serialNumber = serial.data;
  const { certificateId } = connection;
  const device = await deps.registry.getDevice(serialNumber);
  if (!device) return { outcome: "ignored", reason: "not-a-device" };
  // The same event finishes a certificate rotation: the device's first connection with its new
  // certificate switches the registry to it and revokes the old one.
  if (device.rotation?.certificateId === certificateId) {
    if (await finishRotation(deps, device, certificateId)) {
      return { outcome: "rotation-finished", serialNumber, certificateId };
    }
  }
  if (device.certificateId === certificateId && device.status === "provisioned") {
    return { outcome: "already-committed", serialNumber, certificateId };
  }
  const claim = device.claim;
  if (claim?.flow !== "fleet" || claim.cancelled) return { outcome: "ignored", reason: "no-fleet-claim" };
  if (claim.certificateId !== certificateId) return { outcome: "ignored", reason: "other-certificate" };

  const replaced = device.status === "provisioned" ? device.certificateId : undefined;
  const now = (deps.clock ?? Date.now)();
  if (!(await commitFleetClaim(deps, device, claim, certificateId, now))) {
    const latest = await deps.registry.getDevice(serialNumber);
    return latest?.certificateId === certificateId && latest.status === "provisioned"
      ? { outcome: "already-committed", serialNumber, certificateId }
      : { outcome: "ignored", reason: latest?.claim?.id === claim.id ? "not-provisioned-yet" : "claim-lost" };
  }
  if (replaced && replaced !== certificateId) {
    // A re-provisioning (product policy `replace`, with the device's proof): the old certificate goes.
    await deps.iot.destroyCertificate(replaced);
  }
  deps.logger.info("fleet provisioning committed", { serialNumber, certificateId });
  return { outcome: "committed", serialNumber, certificateId };
}
