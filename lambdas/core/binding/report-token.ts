import { DomainError } from "../errors.ts";
import {
  type BindingDeps,
  chargeWindow,
  completeBind,
  configOf,
  now,
  productBinding,
} from "./bind-device.ts";
import { BindingRefusedError, type DeviceRef, hashToken, TooManyTokenReportsError } from "./model.ts";

export type ReportOutcome = "recorded" | "repeated" | "matched-phone-token";

/**
 * A device reports a token (`thing.awss.enrollee.match`). The cloud keeps every reported,
 * unexpired token until it is used or expires (seed 001: a device may report several in a short
 * time). Three conditional writes, tried in order, none a check-then-write:
 *   - a new token (absent, or an expired item): created with the product's TTL
 *   - a token a phone registered first (path 3): the device is recorded on it, and the phone's
 *     user is bound at once (a failure there is left for the phone's poll, which retries it)
 *   - otherwise the token must already be this device's: a retried report (the device retries
 *     after 30 s without an answer), answered the same; a phone-made token still unbound is bound
 * A token another device reported is refused (BindingRefusedError). The caller has checked that
 * the device exists and belongs to the product.
 *
 * Every report first counts against the device's report window (`maxTokenReports` per
 * `tokenReportWindowSeconds`, the failed-bind limit's windowed counter): over it, nothing is read
 * or stored and the answer is TooManyTokenReportsError (a flooding device costs one UpdateItem a
 * report). Reports are not refunded: a repeated or refused report is as much load as a new one.
 */
export async function reportToken(
  deps: BindingDeps,
  request: { device: DeviceRef; token: string },
): Promise<ReportOutcome> {
  const { maxTokenReports, tokenReportWindowSeconds } = configOf(deps);
  const charge = await chargeWindow(
    deps,
    { kind: "token-reports", device: request.device },
    maxTokenReports,
    tokenReportWindowSeconds,
  );
  if (!charge.charged) {
    deps.logger.warn("binding: too many token reports", { ...request.device });
    throw new TooManyTokenReportsError(charge.retryAfterSeconds);
  }
  const setting = await productBinding(deps, request.device.productKey);
  if (!setting) throw new BindingRefusedError();
  const tokenHash = hashToken(request.token);
  const at = now(deps);
  const reportedAt = new Date(at).toISOString();
  const created = await deps.store.createReportedToken(
    { tokenHash, ...request.device, reportedAt, expiresAtMs: at + setting.tokenTtlSeconds * 1000 },
    at,
  );
  if (created) {
    deps.logger.info("binding: token reported", { ...request.device });
    return "recorded";
  }
  const attached = await deps.store.attachDevice(tokenHash, request.device, reportedAt, at);
  const token = attached ?? (await deps.store.getToken(tokenHash));
  if (
    !token ||
    token.productKey !== request.device.productKey ||
    token.deviceName !== request.device.deviceName ||
    token.expiresAtMs <= at
  ) {
    deps.logger.warn("binding: token report refused (another device's or expired)", { ...request.device });
    throw new BindingRefusedError();
  }
  if (token.phoneUserId !== undefined && token.usedBy === undefined) {
    try {
      await completeBind(deps, {
        userId: token.phoneUserId,
        device: request.device,
        tokenHash,
        ownership: setting.ownership,
        via: "phone-token",
      });
    } catch (error) {
      // The device did its part; the phone's poll retries the bind and gets the answer.
      if (!(error instanceof DomainError) || error.kind === "unavailable" || error.kind === "throttled")
        throw error;
      deps.logger.info("binding: phone-made token reported, bind refused", {
        ...request.device,
        code: error.code,
      });
    }
    return "matched-phone-token";
  }
  deps.logger.info("binding: token report repeated", { ...request.device });
  return attached ? "matched-phone-token" : "repeated";
}

/**
 * A device reset (`thing.reset`), in this order:
 *   1. raise the device's reset marker to now (conditional: only ever raised). From here on no
 *      token reported before now binds (the bind's use of a token is conditional on being reported
 *      after the marker), including one the next step does not find: it reads the device's tokens
 *      through gsi1, eventually consistent on AWS, so a token reported just before may be missing.
 *   2. delete the device's unused and used tokens it finds (tidying: step 1 already disarmed them)
 *   3. delete every binding, each with an audit record
 * A crash after 1 or 2 leaves old tokens refused and the bindings in place; the retry (the rule's,
 * or the device's) raises the marker again and completes. Idempotent: a repeated reset removes
 * nothing more and writes one more audit record. Tokens reported after the marker bind as usual
 * (the device re-binds after a factory reset); one reported in the marker's millisecond does not.
 * Left open: a bind already past its marker read when the reset runs (milliseconds) may complete.
 */
export async function resetDevice(
  deps: BindingDeps,
  device: DeviceRef,
): Promise<{ removedBindings: number; removedTokens: number }> {
  await deps.store.raiseResetMarker(device, now(deps));
  const hashes = await deps.store.listDeviceTokens(device);
  for (const hash of hashes) await deps.store.deleteToken(hash);
  const owners = await deps.store.listOwners(device);
  const at = new Date(now(deps)).toISOString();
  let removed = 0;
  for (const owner of owners) {
    const gone = await deps.store.deleteUserBinding(device, owner.userId);
    if (gone.length === 0) continue;
    removed++;
    await deps.store.putAudit({ ...device, action: "reset", userId: owner.userId, via: "device-reset", at });
  }
  if (removed === 0) await deps.store.putAudit({ ...device, action: "reset", via: "device-reset", at });
  deps.logger.info("binding: device reset", {
    ...device,
    removedBindings: removed,
    removedTokens: hashes.length,
  });
  return { removedBindings: removed, removedTokens: hashes.length };
}
