import { readCertificate } from "../pki/certificate-reader.ts";
import type { Device } from "../registry/model.ts";
import type { Registry } from "../registry/ports.ts";
import type { IotProvisioning } from "../vending/ports.ts";
import { type DevicePublisher, rotationTopics } from "./ports.ts";

/** One device's state as `onramp registry rotate` reports it. */
export type RotationStatus = {
  serialNumber: string;
  certificateId: string;
  notAfter: string;
  /** `asked` now; `pending` a rotation is waiting for the device's switch; `skipped` not expiring. */
  state: "asked" | "pending" | "skipped";
};

export type RotationScope = { serialNumber: string } | { productKey: string };

/**
 * Asks provisioned devices to rotate their certificates: a message on their
 * `things/{thing}/certificates/rotate/required` topic (`{reason, notAfter, requestedAt}`); the
 * device answers by rotating (rotate-certificate.ts). With `expiringWithinMs`, only devices whose
 * certificate expires within it are asked. Devices whose rotation is already pending are reported,
 * not asked again; a later run shows who rotated (their new certificate no longer expires soon).
 */
export async function requestRotations(
  deps: {
    registry: Registry;
    iot: Pick<IotProvisioning, "describeCertificate">;
    publisher: DevicePublisher;
    clock?: () => number;
  },
  scope: RotationScope,
  options: { expiringWithinMs?: number; dryRun?: boolean; onProgress?: (done: number) => void },
): Promise<RotationStatus[]> {
  const now = (deps.clock ?? Date.now)();
  const statuses: RotationStatus[] = [];
  for await (const device of devicesOf(deps.registry, scope)) {
    if (device.status !== "provisioned" || !device.certificateId) continue;
    const described = await deps.iot.describeCertificate(device.certificateId);
    if (!described) continue;
    const notAfter = readCertificate(described.certificatePem).notAfter;
    const base = {
      serialNumber: device.serialNumber,
      certificateId: device.certificateId,
      notAfter: notAfter.toISOString(),
    };
    if (device.rotation) {
      statuses.push({ ...base, state: "pending" });
    } else if (
      options.expiringWithinMs !== undefined &&
      notAfter.getTime() - now > options.expiringWithinMs
    ) {
      statuses.push({ ...base, state: "skipped" });
    } else {
      if (!options.dryRun) {
        await deps.publisher.publish(rotationTopics.required(device.thingName ?? device.serialNumber), {
          reason: options.expiringWithinMs === undefined ? "operator" : "expiring",
          notAfter: base.notAfter,
          requestedAt: new Date(now).toISOString(),
        });
      }
      statuses.push({ ...base, state: "asked" });
    }
    options.onProgress?.(statuses.length);
  }
  return statuses;
}

async function* devicesOf(registry: Registry, scope: RotationScope): AsyncIterable<Device> {
  if ("serialNumber" in scope) {
    const device = await registry.getDevice(scope.serialNumber);
    if (device) yield device;
    return;
  }
  let cursor: string | undefined;
  do {
    const page = await registry.listDevices(scope.productKey, { limit: 100, ...(cursor ? { cursor } : {}) });
    for (const device of page.devices) yield device;
    cursor = page.cursor;
  } while (cursor);
}
