import type { IotProvisioning } from "../vending/ports.ts";
import type { Device } from "./model.ts";
import type { Registry } from "./ports.ts";

type Deps = {
  registry: Registry;
  iot: Pick<IotProvisioning, "setCertificateStatus" | "describeCertificate">;
};

/**
 * Disables a device: the registry refuses provisioning, a flow in flight loses its claim (it
 * cannot commit and undoes its work), and its certificates (the committed one and one a flow in
 * flight holds) become INACTIVE. Reversible with enableDevice.
 */
export async function disableDevice(deps: Deps, serialNumber: string, reason?: string): Promise<Device> {
  const device = await deps.registry.setDeviceStatus(serialNumber, "disabled", {
    from: ["registered", "provisioned"],
    ...(reason ? { reason } : {}),
  });
  await applyToCertificates(deps, device, "INACTIVE");
  return device;
}

/** Re-enables a disabled device (back to provisioned if it has a certificate, else registered). */
export async function enableDevice(deps: Deps, serialNumber: string): Promise<Device> {
  const current = await deps.registry.getDevice(serialNumber);
  const next = current?.certificateId ? "provisioned" : "registered";
  const device = await deps.registry.setDeviceStatus(serialNumber, next, { from: ["disabled"] });
  if (device.certificateId) await deps.iot.setCertificateStatus(device.certificateId, "ACTIVE");
  if (device.rotation) await deps.iot.setCertificateStatus(device.rotation.certificateId, "ACTIVE");
  return device;
}

/** Revokes a device for good: the registry refuses it and its certificates are REVOKED in AWS IoT. */
export async function revokeDevice(deps: Deps, serialNumber: string, reason?: string): Promise<Device> {
  const device = await deps.registry.setDeviceStatus(serialNumber, "revoked", {
    from: ["registered", "provisioned", "disabled"],
    ...(reason ? { reason } : {}),
  });
  await applyToCertificates(deps, device, "REVOKED");
  return device;
}

/**
 * The registry write came first, so a flow that activates afterwards re-reads the device and
 * re-applies this status (claims.ts activateCommitted): the operator wins either way. A claimed
 * certificate may already be gone (the losing flow destroys it): skip it then.
 */
async function applyToCertificates(deps: Deps, device: Device, status: "INACTIVE" | "REVOKED") {
  if (device.certificateId) await deps.iot.setCertificateStatus(device.certificateId, status);
  // A flow in flight's certificate, and a rotation's new one, are the device's too.
  for (const other of [device.claim?.certificateId, device.rotation?.certificateId]) {
    if (!other || other === device.certificateId) continue;
    const current = await deps.iot.describeCertificate(other);
    if (current && current.status !== "REVOKED") await deps.iot.setCertificateStatus(other, status);
  }
}
