import { type BindingDeps, now } from "./bind-device.ts";
import { type Binding, type BindingUser, type DeviceRef, OperatorOnlyError } from "./model.ts";

/** GET /v1/devices: the user's bound devices, a page at a time. */
export async function listMyDevices(
  deps: BindingDeps,
  request: { user: BindingUser; limit?: number; cursor?: string },
): Promise<{ devices: (DeviceRef & { boundAt: string })[]; nextToken?: string }> {
  const page = await deps.store.listUserBindings(request.user.userId, {
    limit: request.limit ?? 50,
    ...(request.cursor ? { cursor: request.cursor } : {}),
  });
  const seen = new Set<string>();
  const devices: (DeviceRef & { boundAt: string })[] = [];
  for (const b of page.bindings) {
    const key = `${b.productKey}/${b.deviceName}`;
    if (seen.has(key)) continue; // the owner slot and a shared item of one user (ownership changed)
    seen.add(key);
    devices.push({ productKey: b.productKey, deviceName: b.deviceName, boundAt: b.boundAt });
  }
  return { devices, ...(page.cursor ? { nextToken: page.cursor } : {}) };
}

/**
 * DELETE /v1/bindings/{productKey}/{deviceName}: removes this user's binding; idempotent (a device
 * not bound to the user is the same success). An audit record for each removal.
 *
 * First the tokens this user used on the device are deleted (a used token answers its own user's
 * retry with the same binding, so left in place it would re-bind by replay until it expires), then
 * the binding: a crash in between leaves the binding, which the user's retry removes.
 */
export async function unbindDevice(
  deps: BindingDeps,
  request: { user: BindingUser; device: DeviceRef },
): Promise<boolean> {
  for (const hash of await deps.store.listDeviceTokens(request.device)) {
    await deps.store.deleteTokenUsedBy(hash, request.user.userId);
  }
  const removed = await deps.store.deleteUserBinding(request.device, request.user.userId);
  if (removed.length > 0) {
    await deps.store.putAudit({
      ...request.device,
      action: "unbind",
      userId: request.user.userId,
      via: "user-unbind",
      at: new Date(now(deps)).toISOString(),
    });
    deps.logger.info("binding: unbound", { ...request.device, userId: request.user.userId });
  }
  return removed.length > 0;
}

/** GET /v1/products/{productKey}/devices/{deviceName}/owners: operators only. */
export async function listOwners(
  deps: BindingDeps,
  request: { user: BindingUser; device: DeviceRef },
): Promise<{ owners: Pick<Binding, "userId" | "boundAt">[] }> {
  if (!request.user.operator) throw new OperatorOnlyError();
  const owners = await deps.store.listOwners(request.device);
  const byUser = new Map<string, string>();
  for (const o of owners) if (!byUser.has(o.userId)) byUser.set(o.userId, o.boundAt);
  return { owners: [...byUser].map(([userId, boundAt]) => ({ userId, boundAt })) };
}
