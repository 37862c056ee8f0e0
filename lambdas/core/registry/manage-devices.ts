import type { IotProvisioning } from "../vending/ports.ts";
import type { Device } from "./model.ts";
import type { Registry } from "./ports.ts";

type Deps = { registry: Registry; iot: IotProvisioning };

/**
 * Disables a device: the registry refuses provisioning and its certificate (if any) becomes
 * INACTIVE. Reversible with enableDevice.
 */
export async function disableDevice(deps: Deps, serialNumber: string, reason?: string): Promise<Device> {
  const device = await deps.registry.setDeviceStatus(serialNumber, "disabled", {
    from: ["registered", "provisioned"],
    ...(reason ? { reason } : {}),
  });
  if (device.certificateId) await deps.iot.setCertificateStatus(device.certificateId, "INACTIVE");
  return device;
}

/** Re-enables a disabled device (back to provisioned if it has a certificate, else registered). */
export async function enableDevice(deps: Deps, serialNumber: string): Promise<Device> {
  const current = await deps.registry.getDevice(serialNumber);
  const next = current?.certificateId ? "provisioned" : "registered";
  const device = await deps.registry.setDeviceStatus(serialNumber, next, { from: ["disabled"] });
  if (device.certificateId) await deps.iot.setCertificateStatus(device.certificateId, "ACTIVE");
  return device;
}

/** Revokes a device for good: the registry refuses it and its certificate is REVOKED in AWS IoT. */
export async function revokeDevice(deps: Deps, serialNumber: string, reason?: string): Promise<Device> {
  const device = await deps.registry.setDeviceStatus(serialNumber, "revoked", {
    from: ["registered", "provisioned", "disabled"],
    ...(reason ? { reason } : {}),
  });
  if (device.certificateId) await deps.iot.setCertificateStatus(device.certificateId, "REVOKED");
  return device;
}
