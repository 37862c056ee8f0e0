import { DomainError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { type BindingOwnership, DEFAULT_PRODUCT_BINDING, type ProductBinding } from "../registry/model.ts";
import {
  type Binding,
  type BindingConfig,
  BindingRefusedError,
  type BindingUser,
  type BindingVia,
  DeviceAlreadyBoundError,
  type DeviceRef,
  defaultBindingConfig,
  hashToken,
  TooManyFailedBindsError,
  type WindowCounter,
} from "./model.ts";
import type { BindingRegistry, BindingStore } from "./ports.ts";

export type BindingDeps = {
  store: BindingStore;
  registry: BindingRegistry;
  logger: Logger;
  /** Settings; each one left out takes its `defaultBindingConfig` value. */
  config?: Partial<BindingConfig>;
  /** Epoch ms (tests inject a clock; expiry and windows are decided with it). */
  clock?: () => number;
};

export type BindResult = { binding: Binding; created: boolean };

export const now = (deps: BindingDeps): number => (deps.clock ?? Date.now)();
export const configOf = (deps: BindingDeps): BindingConfig => ({ ...defaultBindingConfig, ...deps.config });

/** The product's binding setting (the default when the product has none). */
export async function productBinding(
  deps: BindingDeps,
  productKey: string,
): Promise<ProductBinding | undefined> {
  const product = await deps.registry.getProduct(productKey);
  if (!product) return undefined;
  return product.binding ?? DEFAULT_PRODUCT_BINDING;
}

/**
 * POST /v1/bindings: the phone's user binds the device with a token the device reported (paths 1
 * and 2). Unknown, expired, used, other device's or other user's tokens are one answer
 * (BindingRefusedError); the same user retrying with the token they used gets the same binding.
 * Every attempt counts against the user's failed-bind window until it succeeds.
 */
export async function bindDevice(
  deps: BindingDeps,
  request: { user: BindingUser; device: DeviceRef; token: string },
): Promise<BindResult> {
  return withFailedBindLimit(deps, request.user.userId, async () => {
    const tokenHash = hashToken(request.token);
    const setting = await productBinding(deps, request.device.productKey);
    if (!setting) throw new BindingRefusedError();
    return completeBind(deps, {
      userId: request.user.userId,
      device: request.device,
      tokenHash,
      ownership: setting.ownership,
      via: "device-token",
    });
  });
}

/**
 * The bind itself, shared by every path. Order of writes (each one conditional, each retry-safe):
 *   0. read the device's reset marker (consistent GetItem; a read, nothing to undo)
 *   1. use the token (unused, or already used by this user: a retry) — one-time under concurrency;
 *      conditional too on the token being reported after the marker, so a token of before a reset
 *      that the reset's eventually consistent index missed (and so did not delete) binds nothing
 *   2. write the binding (single-owner: the device's owner slot, conditional on it being free or
 *      this user's) — if refused, step 1 is undone and the answer is DEVICE_ALREADY_BOUND
 *   3. the audit record (keyed by the token, so a retry writes the same one)
 * A crash after 1 leaves a token only this user can use until it expires: their retry (or the
 * phone's poll) completes the bind; no other user can take it, and no binding exists that the
 * user cannot see. A crash after 2 leaves a binding the user sees and can remove; the retry
 * writes the audit record.
 */
export async function completeBind(
  deps: BindingDeps,
  input: {
    userId: string;
    device: DeviceRef;
    tokenHash: string;
    ownership: BindingOwnership;
    via: BindingVia;
  },
): Promise<BindResult> {
  const at = new Date(now(deps)).toISOString();
  const resetAtMs = await deps.store.getResetMarker(input.device);
  const used = await deps.store.useToken(
    input.tokenHash,
    input.device,
    input.userId,
    at,
    now(deps),
    resetAtMs === undefined ? undefined : new Date(resetAtMs).toISOString(),
  );
  if (!used) {
    deps.logger.info("binding: token refused", { ...input.device });
    throw new BindingRefusedError();
  }
  let result: BindResult;
  try {
    result = await deps.store.putBinding(
      { ...input.device, userId: input.userId, boundAt: at },
      input.ownership,
    );
  } catch (error) {
    if (error instanceof DeviceAlreadyBoundError) {
      await deps.store.releaseToken(input.tokenHash, input.userId).catch((undo: unknown) =>
        deps.logger.warn("binding: releasing the token after a refused bind failed", {
          ...input.device,
          error: undo instanceof Error ? undo.name : "unknown",
        }),
      );
      deps.logger.info("binding: device already bound to another user", { ...input.device });
    }
    throw error;
  }
  await deps.store.putAudit({
    ...input.device,
    action: "bind",
    userId: input.userId,
    via: input.via,
    at: result.binding.boundAt,
    dedupeKey: `bind#${input.userId}#${input.tokenHash.slice(0, 16)}`,
  });
  deps.logger.info("binding: bound", {
    ...input.device,
    userId: input.userId,
    via: input.via,
    created: result.created,
  });
  return result;
}

/**
 * Runs a bind attempt under the user's failed-bind limit: the attempt is counted before it runs
 * (one conditional write: only while the window's count is under the limit), and the count is
 * taken back when it succeeds or fails for a reason that is not the user's (a dependency). So
 * concurrent attempts can never exceed the limit, and a crash counts against the user, not for.
 */
export async function withFailedBindLimit<T>(
  deps: BindingDeps,
  userId: string,
  attempt: () => Promise<T>,
): Promise<T> {
  const { maxFailedBinds, failedBindWindowSeconds } = configOf(deps);
  const counter: WindowCounter = { kind: "failed-binds", userId };
  const charge = await chargeWindow(deps, counter, maxFailedBinds, failedBindWindowSeconds);
  if (!charge.charged) {
    deps.logger.warn("binding: too many failed binds", { userId });
    throw new TooManyFailedBindsError(charge.retryAfterSeconds);
  }
  try {
    const result = await attempt();
    await refund(deps, counter, charge.windowStartMs);
    return result;
  } catch (error) {
    const usersFault =
      error instanceof DomainError &&
      (error.kind === "forbidden" || error.kind === "conflict" || error.kind === "invalid");
    if (!usersFault) await refund(deps, counter, charge.windowStartMs);
    throw error;
  }
}

/**
 * Counts one event against `limit` per fixed window of `windowSeconds` (the clock's window; the
 * item outlives it by a window, then its TTL removes it): one conditional write, so concurrent
 * events never exceed the limit. Shared by the failed-bind and the token-report limits.
 */
export async function chargeWindow(
  deps: BindingDeps,
  counter: WindowCounter,
  limit: number,
  windowSeconds: number,
): Promise<{ charged: boolean; windowStartMs: number; retryAfterSeconds: number }> {
  const windowMs = windowSeconds * 1000;
  const at = now(deps);
  const windowStartMs = at - (at % windowMs);
  const charged = await deps.store.chargeWindow(counter, windowStartMs, limit, windowStartMs + 2 * windowMs);
  const retryAfterSeconds = Math.max(1, Math.ceil((windowStartMs + windowMs - at) / 1000));
  return { charged, windowStartMs, retryAfterSeconds };
}

async function refund(deps: BindingDeps, counter: WindowCounter, windowStartMs: number): Promise<void> {
  await deps.store.refundWindow(counter, windowStartMs).catch((error: unknown) =>
    deps.logger.warn("binding: refunding a bind attempt failed", {
      error: error instanceof Error ? error.name : "unknown",
    }),
  );
}
