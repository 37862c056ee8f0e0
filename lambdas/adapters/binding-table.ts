import type { WindowCounter } from "#core/binding/model.ts";
import type { TableDesign } from "./table-design.ts";

/**
 * The binding table's design (issue 11), shared by the CDK construct and the local stack so both
 * create the same table. Env `BINDING_TABLE_NAME`.
 *
 * | item                 | pk                                 | sk                    | gsi1pk                              | gsi1sk                |
 * |----------------------|------------------------------------|-----------------------|-------------------------------------|-----------------------|
 * | token                | TOKEN#{sha256(token)}              | TOKEN                 | DEVICE_TOKENS#{pk}/{dn} (reported)  | {sha256}              |
 * | owner (single-owner) | DEVICE#{productKey}/{deviceName}   | OWNER                 | USER#{userId}                       | {productKey}/{dn}     |
 * | owner (shared)       | DEVICE#{productKey}/{deviceName}   | OWNER#{userId}        | USER#{userId}                       | {productKey}/{dn}     |
 * | failed-bind window   | FAILED_BINDS#{userId}              | WINDOW#{windowStartMs}| -                                   | -                     |
 * | token-report window  | TOKEN_REPORTS#{productKey}/{dn}    | WINDOW#{windowStartMs}| -                                   | -                     |
 * | reset marker         | RESET#{productKey}/{deviceName}    | RESET                 | -                                   | -                     |
 * | audit record         | AUDIT#{productKey}/{deviceName}    | {at}#{action}#{id}    | -                                   | -                     |
 *
 * `expiresAt` (epoch seconds) is the TTL attribute (tokens, windows); readers compare
 * `expiresAtMs`, since DynamoDB's TTL deletes late and dynalite never does. Audit records,
 * bindings and reset markers (`resetAtMs`, one per device ever reset) do not expire.
 */
export const bindingTable = {
  partitionKey: "pk",
  sortKey: "sk",
  gsi1: { name: "gsi1", partitionKey: "gsi1pk", sortKey: "gsi1sk" },
  ttlAttribute: "expiresAt",
} as const satisfies TableDesign;

const device = (productKey: string, deviceName: string) => `${productKey}/${deviceName}`;

export const bindingKeys = {
  token: (tokenHash: string) => ({ pk: `TOKEN#${tokenHash}`, sk: "TOKEN" }),
  deviceTokens: (productKey: string, deviceName: string) => `DEVICE_TOKENS#${device(productKey, deviceName)}`,
  devicePartition: (productKey: string, deviceName: string) => `DEVICE#${device(productKey, deviceName)}`,
  ownerSlot: (productKey: string, deviceName: string) => ({
    pk: bindingKeys.devicePartition(productKey, deviceName),
    sk: "OWNER",
  }),
  sharedOwner: (productKey: string, deviceName: string, userId: string) => ({
    pk: bindingKeys.devicePartition(productKey, deviceName),
    sk: `OWNER#${userId}`,
  }),
  userDevices: (userId: string) => `USER#${userId}`,
  deviceSortKey: device,
  /** One item per counter and window: a user's failed binds, a device's token reports. */
  window: (counter: WindowCounter, windowStartMs: number) => ({
    pk:
      counter.kind === "failed-binds"
        ? `FAILED_BINDS#${counter.userId}`
        : `TOKEN_REPORTS#${device(counter.device.productKey, counter.device.deviceName)}`,
    sk: `WINDOW#${windowStartMs}`,
  }),
  resetMarker: (productKey: string, deviceName: string) => ({
    pk: `RESET#${device(productKey, deviceName)}`,
    sk: "RESET",
  }),
  audit: (productKey: string, deviceName: string) => `AUDIT#${device(productKey, deviceName)}`,
} as const;
