import type { BindingOwnership } from "../registry/model.ts";
import type { AuditRecord, Binding, DeviceRef, TokenRecord, WindowCounter } from "./model.ts";

/**
 * The binding table (tokens, bindings, reset markers, window counters, audit records). Every write is one
 * conditional DynamoDB write; implementations translate failed conditions into the documented
 * results and never check-then-write. `nowMs` decides expiry (readers compare `expiresAtMs`:
 * DynamoDB's TTL deletes late and dynalite never does).
 */
export interface BindingStore {
  /** A device's report of a new token: written if absent or expired. False when a live item exists. */
  createReportedToken(
    token: TokenRecord & DeviceRef & { reportedAt: string },
    nowMs: number,
  ): Promise<boolean>;
  /**
   * A device's report of a token a phone registered first: records the device on it. Conditional on
   * the token being live, registered by a phone and not yet reported. Returns the updated token, or
   * undefined when the condition failed.
   */
  attachDevice(
    tokenHash: string,
    device: DeviceRef,
    reportedAt: string,
    nowMs: number,
  ): Promise<TokenRecord | undefined>;
  /** A phone's registration of a token it made: written if absent or expired. False otherwise. */
  createRegisteredToken(
    token: TokenRecord & { phoneUserId: string; registeredAt: string },
    nowMs: number,
  ): Promise<boolean>;
  /**
   * A phone's registration of a token its device reported first: records the user. Conditional on
   * the token being live, reported, unused and registered by nobody. The updated token, or undefined.
   */
  attachUser(
    tokenHash: string,
    userId: string,
    registeredAt: string,
    nowMs: number,
  ): Promise<TokenRecord | undefined>;
  getToken(tokenHash: string): Promise<TokenRecord | undefined>;
  /**
   * Consumes a token for a user: conditional on it being live, reported by this device, registered
   * by nobody else, unused or used by this same user (a retry), and, when `reportedAfter` (ISO
   * time) is given, reported after it (the device's reset marker). False otherwise.
   */
  useToken(
    tokenHash: string,
    device: DeviceRef,
    userId: string,
    at: string,
    nowMs: number,
    reportedAfter?: string,
  ): Promise<boolean>;
  /** Undoes `useToken` (a bind that could not complete); conditional on the user. */
  releaseToken(tokenHash: string, userId: string): Promise<void>;
  /**
   * Raises the device's reset marker to `resetAtMs` (one conditional write: never lowered, so a
   * late or repeated reset cannot re-admit tokens an earlier one refused).
   */
  raiseResetMarker(device: DeviceRef, resetAtMs: number): Promise<void>;
  /** The device's latest reset (epoch ms), read consistently; undefined if it was never reset. */
  getResetMarker(device: DeviceRef): Promise<number | undefined>;
  /** Hashes of every token a device reported (for a reset; an eventually consistent index). */
  listDeviceTokens(device: DeviceRef): Promise<string[]>;
  deleteToken(tokenHash: string): Promise<void>;
  /** Deletes a token only if this user used it (an unbind retires the user's used tokens). */
  deleteTokenUsedBy(tokenHash: string, userId: string): Promise<void>;

  /**
   * Writes a binding. `single-owner`: the device's one owner slot, conditional on it being free or
   * this user's (DeviceAlreadyBoundError otherwise). `shared`: the user's own binding item. A
   * binding that exists already keeps its `boundAt` (`created` false).
   */
  putBinding(binding: Binding, ownership: BindingOwnership): Promise<{ binding: Binding; created: boolean }>;
  /** This user's binding to the device, if any. */
  getBinding(device: DeviceRef, userId: string): Promise<Binding | undefined>;
  /** Removes this user's binding(s) to the device (slot and shared item); the removed ones. */
  deleteUserBinding(device: DeviceRef, userId: string): Promise<Binding[]>;
  /** Every owner of the device. */
  listOwners(device: DeviceRef): Promise<Binding[]>;
  /** A user's bound devices, a page at a time (opaque cursor). */
  listUserBindings(
    userId: string,
    options: { limit: number; cursor?: string },
  ): Promise<{ bindings: Binding[]; cursor?: string }>;

  /**
   * Counts one event in the counter's window (a user's failed or in-flight bind, a device's token
   * report), atomically, only while the count is under `limit`. False when the limit is reached
   * (nothing counted).
   */
  chargeWindow(
    counter: WindowCounter,
    windowStartMs: number,
    limit: number,
    expiresAtMs: number,
  ): Promise<boolean>;
  /** Takes back a charge (a bind that succeeded). */
  refundWindow(counter: WindowCounter, windowStartMs: number): Promise<void>;

  /** Writes an audit record (the same `dedupeKey` writes the same record). */
  putAudit(record: AuditRecord): Promise<void>;
}

/** The registry as binding reads it. */
export interface BindingRegistry {
  getDevice(serialNumber: string): Promise<{ productKey: string; status: string } | undefined>;
  getProduct(
    productKey: string,
  ): Promise<
    { productKey: string; binding?: { ownership: BindingOwnership; tokenTtlSeconds: number } } | undefined
  >;
}

/** Publishes a reply to a device's topic (the IoT data plane; locally the MQTT endpoint). */
export interface BindingPublisher {
  publish(topic: string, payload: unknown): Promise<void>;
}
