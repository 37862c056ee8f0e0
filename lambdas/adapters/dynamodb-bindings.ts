import { randomUUID } from "node:crypto";
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from "@aws-sdk/lib-dynamodb";
import {
  type AuditRecord,
  type Binding,
  DeviceAlreadyBoundError,
  type DeviceRef,
  type TokenRecord,
  type WindowCounter,
} from "#core/binding/model.ts";
import type { BindingStore } from "#core/binding/ports.ts";
import { ValidationError } from "#core/errors.ts";
import type { BindingOwnership } from "#core/registry/model.ts";
import { aws } from "./aws-errors.ts";
import { bindingKeys, bindingTable } from "./binding-table.ts";
import { allItems, conditionalWrite, expiry, type Item, updateIf } from "./dynamodb-items.ts";

/**
 * The binding store on DynamoDB (the binding table, `binding-table.ts`). Each method is one
 * conditional write or one read; ConditionalCheckFailedException becomes the port's documented
 * result (false / undefined / DeviceAlreadyBoundError), other SDK errors domain errors.
 */
export class DynamoDbBindingStore implements BindingStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  createReportedToken(
    token: TokenRecord & DeviceRef & { reportedAt: string },
    nowMs: number,
  ): Promise<boolean> {
    return this.putIfAbsentOrExpired(
      {
        ...bindingKeys.token(token.tokenHash),
        ...this.tokenIndex(token, token.tokenHash),
        tokenHash: token.tokenHash,
        productKey: token.productKey,
        deviceName: token.deviceName,
        reportedAt: token.reportedAt,
        ...expiry(token.expiresAtMs),
      },
      nowMs,
      "ReportToken",
    );
  }

  createRegisteredToken(
    token: TokenRecord & { phoneUserId: string; registeredAt: string },
    nowMs: number,
  ): Promise<boolean> {
    return this.putIfAbsentOrExpired(
      {
        ...bindingKeys.token(token.tokenHash),
        tokenHash: token.tokenHash,
        phoneUserId: token.phoneUserId,
        registeredAt: token.registeredAt,
        ...expiry(token.expiresAtMs),
      },
      nowMs,
      "RegisterToken",
    );
  }

  async attachDevice(
    tokenHash: string,
    device: DeviceRef,
    reportedAt: string,
    nowMs: number,
  ): Promise<TokenRecord | undefined> {
    const item = await updateIf(this.client, this.tableName, "AttachDevice", {
      Key: bindingKeys.token(tokenHash),
      UpdateExpression: "SET productKey = :pk, deviceName = :dn, reportedAt = :at, gsi1pk = :g, gsi1sk = :h",
      ConditionExpression:
        "attribute_exists(pk) AND attribute_exists(phoneUserId) AND attribute_not_exists(productKey) AND expiresAtMs > :now",
      ExpressionAttributeValues: {
        ":pk": device.productKey,
        ":dn": device.deviceName,
        ":at": reportedAt,
        ":g": bindingKeys.deviceTokens(device.productKey, device.deviceName),
        ":h": tokenHash,
        ":now": nowMs,
      },
      ReturnValues: "ALL_NEW",
    });
    return item ? toToken(item) : undefined;
  }

  async attachUser(
    tokenHash: string,
    userId: string,
    registeredAt: string,
    nowMs: number,
  ): Promise<TokenRecord | undefined> {
    const item = await updateIf(this.client, this.tableName, "AttachUser", {
      Key: bindingKeys.token(tokenHash),
      UpdateExpression: "SET phoneUserId = :u, registeredAt = :at",
      ConditionExpression:
        "attribute_exists(productKey) AND attribute_not_exists(phoneUserId) AND attribute_not_exists(usedBy) AND expiresAtMs > :now",
      ExpressionAttributeValues: { ":u": userId, ":at": registeredAt, ":now": nowMs },
      ReturnValues: "ALL_NEW",
    });
    return item ? toToken(item) : undefined;
  }

  async getToken(tokenHash: string): Promise<TokenRecord | undefined> {
    const { Item } = await aws("GetToken", () =>
      this.client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: bindingKeys.token(tokenHash),
          ConsistentRead: true,
        }),
      ),
    );
    return Item ? toToken(Item) : undefined;
  }

  async useToken(
    tokenHash: string,
    device: DeviceRef,
    userId: string,
    at: string,
    nowMs: number,
    reportedAfter?: string,
  ): Promise<boolean> {
    // reportedAt and the marker are both Date#toISOString (fixed width, UTC): as strings, which
    // DynamoDB compares by their UTF-8 bytes, they order as the times do.
    const item = await updateIf(this.client, this.tableName, "UseToken", {
      Key: bindingKeys.token(tokenHash),
      UpdateExpression: "SET usedBy = :u, usedAt = if_not_exists(usedAt, :at)",
      ConditionExpression:
        "attribute_exists(pk) AND productKey = :pk AND deviceName = :dn AND expiresAtMs > :now" +
        " AND (attribute_not_exists(usedBy) OR usedBy = :u)" +
        " AND (attribute_not_exists(phoneUserId) OR phoneUserId = :u)" +
        (reportedAfter === undefined ? "" : " AND reportedAt > :reset"),
      ExpressionAttributeValues: {
        ":u": userId,
        ":at": at,
        ":pk": device.productKey,
        ":dn": device.deviceName,
        ":now": nowMs,
        ...(reportedAfter === undefined ? {} : { ":reset": reportedAfter }),
      },
      ReturnValues: "NONE",
    });
    return item !== undefined;
  }

  async releaseToken(tokenHash: string, userId: string): Promise<void> {
    await updateIf(this.client, this.tableName, "ReleaseToken", {
      Key: bindingKeys.token(tokenHash),
      UpdateExpression: "REMOVE usedBy, usedAt",
      ConditionExpression: "usedBy = :u",
      ExpressionAttributeValues: { ":u": userId },
      ReturnValues: "NONE",
    });
  }

  async raiseResetMarker(device: DeviceRef, resetAtMs: number): Promise<void> {
    // A failed condition means a later reset's marker is there already: nothing to raise.
    await updateIf(this.client, this.tableName, "RaiseResetMarker", {
      Key: bindingKeys.resetMarker(device.productKey, device.deviceName),
      UpdateExpression: "SET productKey = :pk, deviceName = :dn, resetAtMs = :t",
      ConditionExpression: "attribute_not_exists(resetAtMs) OR resetAtMs < :t",
      ExpressionAttributeValues: { ":pk": device.productKey, ":dn": device.deviceName, ":t": resetAtMs },
      ReturnValues: "NONE",
    });
  }

  async getResetMarker(device: DeviceRef): Promise<number | undefined> {
    const { Item } = await aws("GetResetMarker", () =>
      this.client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: bindingKeys.resetMarker(device.productKey, device.deviceName),
          ConsistentRead: true,
        }),
      ),
    );
    return typeof Item?.resetAtMs === "number" ? Item.resetAtMs : undefined;
  }

  async listDeviceTokens(device: DeviceRef): Promise<string[]> {
    const items = await allItems((start) =>
      aws("ListDeviceTokens", () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: bindingTable.gsi1.name,
            KeyConditionExpression: "gsi1pk = :g",
            ExpressionAttributeValues: {
              ":g": bindingKeys.deviceTokens(device.productKey, device.deviceName),
            },
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      ),
    );
    return items.map((item) => String(item.tokenHash));
  }

  async deleteToken(tokenHash: string): Promise<void> {
    await aws("DeleteToken", () =>
      this.client.send(new DeleteCommand({ TableName: this.tableName, Key: bindingKeys.token(tokenHash) })),
    );
  }

  async deleteTokenUsedBy(tokenHash: string, userId: string): Promise<void> {
    // A failed condition (unused, or another user's) is not this unbind's to retire: left alone.
    await conditionalWrite("DeleteTokenUsedBy", () =>
      this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: bindingKeys.token(tokenHash),
          ConditionExpression: "usedBy = :u",
          ExpressionAttributeValues: { ":u": userId },
        }),
      ),
    );
  }

  async putBinding(
    binding: Binding,
    ownership: BindingOwnership,
  ): Promise<{ binding: Binding; created: boolean }> {
    const single = ownership === "single-owner";
    const key = single
      ? bindingKeys.ownerSlot(binding.productKey, binding.deviceName)
      : bindingKeys.sharedOwner(binding.productKey, binding.deviceName, binding.userId);
    const old = await updateIf(this.client, this.tableName, "PutBinding", {
      Key: key,
      UpdateExpression:
        "SET productKey = :pk, deviceName = :dn, userId = :u, boundAt = if_not_exists(boundAt, :at), gsi1pk = :g, gsi1sk = :gs",
      ...(single ? { ConditionExpression: "attribute_not_exists(pk) OR userId = :u" } : {}),
      ExpressionAttributeValues: {
        ":pk": binding.productKey,
        ":dn": binding.deviceName,
        ":u": binding.userId,
        ":at": binding.boundAt,
        ":g": bindingKeys.userDevices(binding.userId),
        ":gs": bindingKeys.deviceSortKey(binding.productKey, binding.deviceName),
      },
      ReturnValues: "ALL_OLD",
    });
    if (!old) throw new DeviceAlreadyBoundError();
    // The old item tells a new binding from one that existed (a retry keeps its boundAt).
    if (typeof old.boundAt === "string") return { binding: toBinding(old), created: false };
    return { binding, created: true };
  }

  async getBinding(device: DeviceRef, userId: string): Promise<Binding | undefined> {
    for (const key of [
      bindingKeys.ownerSlot(device.productKey, device.deviceName),
      bindingKeys.sharedOwner(device.productKey, device.deviceName, userId),
    ]) {
      const { Item } = await aws("GetBinding", () =>
        this.client.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
      );
      if (Item && Item.userId === userId) return toBinding(Item);
    }
    return undefined;
  }

  async deleteUserBinding(device: DeviceRef, userId: string): Promise<Binding[]> {
    const removed: Binding[] = [];
    for (const [key, condition] of [
      [bindingKeys.ownerSlot(device.productKey, device.deviceName), true],
      [bindingKeys.sharedOwner(device.productKey, device.deviceName, userId), false],
    ] as const) {
      const deleted = await conditionalWrite("DeleteBinding", () =>
        this.client.send(
          new DeleteCommand({
            TableName: this.tableName,
            Key: key,
            ...(condition
              ? { ConditionExpression: "userId = :u", ExpressionAttributeValues: { ":u": userId } }
              : {}),
            ReturnValues: "ALL_OLD",
          }),
        ),
      );
      if (deleted?.Attributes) removed.push(toBinding(deleted.Attributes));
    }
    return removed;
  }

  async listOwners(device: DeviceRef): Promise<Binding[]> {
    const items = await allItems((start) =>
      aws("ListOwners", () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: "pk = :p AND begins_with(sk, :o)",
            ExpressionAttributeValues: {
              ":p": bindingKeys.devicePartition(device.productKey, device.deviceName),
              ":o": "OWNER",
            },
            ConsistentRead: true,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      ),
    );
    return items.map(toBinding);
  }

  async listUserBindings(
    userId: string,
    options: { limit: number; cursor?: string },
  ): Promise<{ bindings: Binding[]; cursor?: string }> {
    const start = options.cursor === undefined ? undefined : decodeCursor(options.cursor, userId);
    const page = await aws("ListUserBindings", () =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: bindingTable.gsi1.name,
          KeyConditionExpression: "gsi1pk = :g",
          ExpressionAttributeValues: { ":g": bindingKeys.userDevices(userId) },
          Limit: options.limit,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      ),
    );
    return {
      bindings: (page.Items ?? []).map(toBinding),
      ...(page.LastEvaluatedKey
        ? { cursor: Buffer.from(JSON.stringify(page.LastEvaluatedKey)).toString("base64url") }
        : {}),
    };
  }

  async chargeWindow(
    counter: WindowCounter,
    windowStartMs: number,
    limit: number,
    expiresAtMs: number,
  ): Promise<boolean> {
    const item = await updateIf(this.client, this.tableName, "ChargeWindow", {
      Key: bindingKeys.window(counter, windowStartMs),
      UpdateExpression: "SET expiresAt = :exp, expiresAtMs = :expMs ADD attempts :one",
      ConditionExpression: "attribute_not_exists(attempts) OR attempts < :limit",
      ExpressionAttributeValues: {
        ":exp": Math.ceil(expiresAtMs / 1000),
        ":expMs": expiresAtMs,
        ":one": 1,
        ":limit": limit,
      },
      ReturnValues: "NONE",
    });
    return item !== undefined;
  }

  async refundWindow(counter: WindowCounter, windowStartMs: number): Promise<void> {
    await updateIf(this.client, this.tableName, "RefundWindow", {
      Key: bindingKeys.window(counter, windowStartMs),
      UpdateExpression: "ADD attempts :minus",
      ConditionExpression: "attempts > :zero",
      ExpressionAttributeValues: { ":minus": -1, ":zero": 0 },
      ReturnValues: "NONE",
    });
  }

  async putAudit(record: AuditRecord): Promise<void> {
    await aws("PutAudit", () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: bindingKeys.audit(record.productKey, record.deviceName),
            sk: `${record.at}#${record.action}#${record.dedupeKey ?? randomUUID()}`,
            productKey: record.productKey,
            deviceName: record.deviceName,
            action: record.action,
            via: record.via,
            at: record.at,
            ...(record.userId ? { userId: record.userId } : {}),
          },
        }),
      ),
    );
  }

  /** Audit records of a device, oldest first (tests, operators). */
  async listAudit(device: DeviceRef): Promise<AuditRecord[]> {
    const page = await aws("ListAudit", () =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "pk = :p",
          ExpressionAttributeValues: { ":p": bindingKeys.audit(device.productKey, device.deviceName) },
          ConsistentRead: true,
        }),
      ),
    );
    return (page.Items ?? []).map((item) => ({
      productKey: String(item.productKey),
      deviceName: String(item.deviceName),
      action: item.action as AuditRecord["action"],
      via: item.via as AuditRecord["via"],
      at: String(item.at),
      ...(item.userId ? { userId: String(item.userId) } : {}),
    }));
  }

  private tokenIndex(device: DeviceRef, tokenHash: string) {
    return { gsi1pk: bindingKeys.deviceTokens(device.productKey, device.deviceName), gsi1sk: tokenHash };
  }

  private async putIfAbsentOrExpired(item: Item, nowMs: number, operation: string): Promise<boolean> {
    const written = await conditionalWrite(operation, () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: "attribute_not_exists(pk) OR expiresAtMs <= :now",
          ExpressionAttributeValues: { ":now": nowMs },
        }),
      ),
    );
    return written !== undefined;
  }
}

function toToken(item: Item): TokenRecord {
  const text = (name: string) => (typeof item[name] === "string" ? { [name]: item[name] as string } : {});
  return {
    tokenHash: String(item.tokenHash),
    expiresAtMs: Number(item.expiresAtMs),
    ...text("productKey"),
    ...text("deviceName"),
    ...text("reportedAt"),
    ...text("phoneUserId"),
    ...text("registeredAt"),
    ...text("usedBy"),
    ...text("usedAt"),
  };
}

function toBinding(item: Item): Binding {
  return {
    productKey: String(item.productKey),
    deviceName: String(item.deviceName),
    userId: String(item.userId),
    boundAt: String(item.boundAt),
  };
}

/** A page cursor as given back: the last key of this user's index query, nothing else. */
function decodeCursor(cursor: string, userId: string): Item {
  try {
    const key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Item;
    const names = Object.keys(key).sort().join(",");
    if (names === "gsi1pk,gsi1sk,pk,sk" && key.gsi1pk === bindingKeys.userDevices(userId)) return key;
  } catch {
    // fall through
  }
  throw new ValidationError("Invalid request: nextToken: not a token this API returned.");
}
