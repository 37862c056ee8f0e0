import {
  type BindingDeps,
  completeBind,
  configOf,
  now,
  productBinding,
  withFailedBindLimit,
} from "./bind-device.ts";
import { type Binding, BindingRefusedError, type BindingUser, hashToken, type TokenRecord } from "./model.ts";

export type PhoneTokenStatus =
  | { status: "pending"; expiresAt: string }
  | { status: "bound"; binding: Binding; created: boolean };

/**
 * POST /v1/binding-tokens (path 3): the phone registers the token it gave the device during Wi-Fi
 * provisioning. Works whichever reaches the cloud first: a new token is created for this user
 * (pending until the device reports it); a token its device already reported is claimed for this
 * user and bound now. Registering again is idempotent; another user's token is refused.
 */
export async function registerPhoneToken(
  deps: BindingDeps,
  request: { user: BindingUser; token: string },
): Promise<PhoneTokenStatus> {
  const tokenHash = hashToken(request.token);
  const at = now(deps);
  const registeredAt = new Date(at).toISOString();
  const expiresAtMs = at + configOf(deps).phoneTokenTtlSeconds * 1000;
  const created = await deps.store.createRegisteredToken(
    { tokenHash, phoneUserId: request.user.userId, registeredAt, expiresAtMs },
    at,
  );
  if (created) return { status: "pending", expiresAt: new Date(expiresAtMs).toISOString() };
  const attached = await deps.store.attachUser(tokenHash, request.user.userId, registeredAt, at);
  return withFailedBindLimit(deps, request.user.userId, async () =>
    settle(deps, request.user, tokenHash, attached ?? (await deps.store.getToken(tokenHash))),
  );
}

/**
 * POST /v1/binding-tokens/status: the registering user polls. Bound once the device reported the
 * token (the bind is retried here if the device's report could not complete it, so a crash
 * between the two converges); unknown, expired and other users' tokens are refused alike.
 */
export async function pollPhoneToken(
  deps: BindingDeps,
  request: { user: BindingUser; token: string },
): Promise<PhoneTokenStatus> {
  const tokenHash = hashToken(request.token);
  const token = await deps.store.getToken(tokenHash);
  if (
    token?.phoneUserId === request.user.userId &&
    token.expiresAtMs > now(deps) &&
    token.productKey === undefined
  ) {
    return { status: "pending", expiresAt: new Date(token.expiresAtMs).toISOString() };
  }
  return withFailedBindLimit(deps, request.user.userId, () => settle(deps, request.user, tokenHash, token));
}

async function settle(
  deps: BindingDeps,
  user: BindingUser,
  tokenHash: string,
  token: TokenRecord | undefined,
): Promise<PhoneTokenStatus> {
  const at = now(deps);
  if (!token || token.phoneUserId !== user.userId) throw new BindingRefusedError();
  if (token.productKey === undefined || token.deviceName === undefined) {
    if (token.expiresAtMs <= at) throw new BindingRefusedError();
    return { status: "pending", expiresAt: new Date(token.expiresAtMs).toISOString() };
  }
  const device = { productKey: token.productKey, deviceName: token.deviceName };
  if (token.usedBy === user.userId) {
    const binding = await deps.store.getBinding(device, user.userId);
    if (binding) return { status: "bound", binding, created: false };
  }
  const setting = await productBinding(deps, device.productKey);
  if (!setting) throw new BindingRefusedError();
  const result = await completeBind(deps, {
    userId: user.userId,
    device,
    tokenHash,
    ownership: setting.ownership,
    via: "phone-token",
  });
  return { status: "bound", ...result };
}
