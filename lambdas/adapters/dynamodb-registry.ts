import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { ConflictError, NotFoundError } from "#core/errors.ts";
import type { Device, DeviceClaim, DeviceStatus, PendingRotation, Product } from "#core/registry/model.ts";
import type { ImportOutcome, NewDevice, NonceStore, Registry } from "#core/registry/ports.ts";
import { aws, isConditionFailed, translateAwsError } from "./aws-errors.ts";
import { keys, registryTable } from "./registry-table.ts";

const BATCH_GET_LIMIT = 100;
const BATCH_WRITE_LIMIT = 25;
const MAX_BATCH_ATTEMPTS = 8;
/** How long a product read stays fresh; products change rarely (a change applies within this). */
const PRODUCT_CACHE_MS = 30_000;

type Item = Record<string, unknown>;

/** The serial-number registry on one DynamoDB table (see registry-table.ts for the design). */
export class DynamoDbRegistry implements Registry, NonceStore {
  /** Products found recently (never absences), so the vending path reads each once per interval. */
  private readonly products = new Map<string, { product: Product; at: number }>();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly options: { productCacheMs?: number; clock?: () => number } = {},
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  async getProduct(productKey: string): Promise<Product | undefined> {
    const now = (this.options.clock ?? Date.now)();
    const cached = this.products.get(productKey);
    if (cached && now - cached.at < (this.options.productCacheMs ?? PRODUCT_CACHE_MS)) return cached.product;
    const { Item } = await aws("GetProduct", () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: keys.product(productKey) })),
    );
    if (!Item) return undefined;
    const product = toProduct(Item);
    this.products.set(productKey, { product, at: now });
    return product;
  }

  async createProduct(product: Product): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...keys.product(product.productKey),
            gsi1pk: "PRODUCTS",
            gsi1sk: product.productKey,
            ...product,
          },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) {
        throw new ConflictError("PRODUCT_EXISTS", `Product ${product.productKey} already exists.`);
      }
      throw translateAwsError(error, "CreateProduct");
    }
  }

  async listProducts(): Promise<Product[]> {
    const products: Product[] = [];
    let cursor: Item | undefined;
    do {
      const page = await aws("ListProducts", () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: registryTable.gsi1.name,
            KeyConditionExpression: "gsi1pk = :p",
            ExpressionAttributeValues: { ":p": "PRODUCTS" },
            ExclusiveStartKey: cursor,
          }),
        ),
      );
      products.push(...(page.Items ?? []).map(toProduct));
      cursor = page.LastEvaluatedKey;
    } while (cursor);
    return products;
  }

  async getDevice(serialNumber: string): Promise<Device | undefined> {
    const { Item } = await aws("GetDevice", () =>
      this.client.send(
        new GetCommand({ TableName: this.tableName, Key: keys.device(serialNumber), ConsistentRead: true }),
      ),
    );
    return Item ? toDevice(Item) : undefined;
  }

  async listDevices(
    productKey: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<{ devices: Device[]; cursor?: string }> {
    const page = await aws("ListDevices", () =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: registryTable.gsi1.name,
          KeyConditionExpression: "gsi1pk = :p",
          ExpressionAttributeValues: { ":p": `PRODUCT#${productKey}` },
          Limit: options.limit ?? 100,
          ExclusiveStartKey: options.cursor
            ? JSON.parse(Buffer.from(options.cursor, "base64url").toString())
            : undefined,
        }),
      ),
    );
    const devices = (page.Items ?? []).map(toDevice);
    return page.LastEvaluatedKey
      ? { devices, cursor: Buffer.from(JSON.stringify(page.LastEvaluatedKey)).toString("base64url") }
      : { devices };
  }

  /**
   * Imports devices with BatchWriteItem, retrying unprocessed items with backoff. BatchWriteItem
   * cannot be conditional, so existing serials are first filtered out with BatchGetItem: a re-run
   * never resets a provisioned device. The remaining window (another import creating and a device
   * provisioning the same serial between the two calls) is documented in ARCHITECTURE.md.
   */
  async importDevices(devices: NewDevice[]): Promise<ImportOutcome> {
    let written = 0;
    let skippedExisting = 0;
    for (let start = 0; start < devices.length; start += BATCH_GET_LIMIT) {
      const chunk = devices.slice(start, start + BATCH_GET_LIMIT);
      const existing = await this.existingSerials(chunk.map((d) => d.serialNumber));
      const fresh = chunk.filter((d) => !existing.has(d.serialNumber));
      skippedExisting += chunk.length - fresh.length;
      const now = new Date().toISOString();
      for (let i = 0; i < fresh.length; i += BATCH_WRITE_LIMIT) {
        const requests = fresh.slice(i, i + BATCH_WRITE_LIMIT).map((d) => ({
          PutRequest: { Item: deviceItem(d, now) },
        }));
        await this.batchWrite(requests);
        written += requests.length;
      }
    }
    return { written, skippedExisting };
  }

  private async existingSerials(serials: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    let pending: Item[] = serials.map((s) => keys.device(s));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= MAX_BATCH_ATTEMPTS)
        throw translateAwsError(new Error("unprocessed keys"), "BatchGetItem");
      if (attempt > 0) await this.sleep(backoff(attempt));
      const result = await aws("BatchGetItem", () =>
        this.client.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: pending, ProjectionExpression: "serialNumber" } },
          }),
        ),
      );
      for (const item of result.Responses?.[this.tableName] ?? []) found.add(String(item.serialNumber));
      pending = (result.UnprocessedKeys?.[this.tableName]?.Keys as Item[] | undefined) ?? [];
    }
    return found;
  }

  private async batchWrite(requests: { PutRequest: { Item: Item } }[]): Promise<void> {
    let pending: unknown[] = requests;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= MAX_BATCH_ATTEMPTS)
        throw translateAwsError(new Error("unprocessed items"), "BatchWriteItem");
      if (attempt > 0) await this.sleep(backoff(attempt));
      const result = await aws("BatchWriteItem", () =>
        this.client.send(
          new BatchWriteCommand({
            RequestItems: { [this.tableName]: pending as { PutRequest: { Item: Item } }[] },
          }),
        ),
      );
      pending = result.UnprocessedItems?.[this.tableName] ?? [];
    }
  }

  async claimDevice(device: Device, claim: DeviceClaim, nowMs: number): Promise<Device | undefined> {
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.device(device.serialNumber),
          UpdateExpression: "SET #claim = :claim, #version = :next, updatedAt = :now",
          ConditionExpression:
            "#version = :version AND #status IN (:registered, :provisioned) AND " +
            "(attribute_not_exists(#claim) OR #claim.expiresAt < :nowMs OR #claim.cancelled = :true)",
          ExpressionAttributeNames: { "#claim": "claim", "#version": "version", "#status": "status" },
          ExpressionAttributeValues: {
            ":claim": claim,
            ":version": device.version,
            ":next": device.version + 1,
            ":now": new Date(nowMs).toISOString(),
            ":nowMs": nowMs,
            ":registered": "registered",
            ":provisioned": "provisioned",
            ":true": true,
          },
          ReturnValues: "ALL_NEW",
        }),
      );
      return Attributes ? toDevice(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw translateAwsError(error, "ClaimDevice");
    }
  }

  async recordClaimCertificate(serialNumber: string, claimId: string, certificateId: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.device(serialNumber),
          UpdateExpression: "SET #claim.certificateId = :cert",
          ConditionExpression: "#claim.id = :claimId",
          ExpressionAttributeNames: { "#claim": "claim" },
          ExpressionAttributeValues: { ":cert": certificateId, ":claimId": claimId },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) {
        throw new ConflictError("PROVISIONING_IN_PROGRESS", "The provisioning claim expired; retry.");
      }
      throw translateAwsError(error, "RecordClaimCertificate");
    }
  }

  async completeClaim(
    serialNumber: string,
    claimId: string,
    result: { certificateId: string; thingName: string; publicKeyFingerprint: string; at: string },
  ): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.device(serialNumber),
          UpdateExpression:
            "SET #status = :provisioned, certificateId = :cert, thingName = :thing, publicKeyFingerprint = :fp, " +
            "provisionedAt = :at, updatedAt = :at, #version = #version + :one " +
            "REMOVE #claim, statusReason, activatedCertificateId",
          ConditionExpression:
            "#claim.id = :claimId AND attribute_not_exists(#claim.cancelled) AND #status IN (:registered, :provisioned)",
          ExpressionAttributeNames: { "#claim": "claim", "#status": "status", "#version": "version" },
          ExpressionAttributeValues: {
            ":registered": "registered",
            ":provisioned": "provisioned",
            ":cert": result.certificateId,
            ":thing": result.thingName,
            ":fp": result.publicKeyFingerprint,
            ":at": result.at,
            ":one": 1,
            ":claimId": claimId,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw translateAwsError(error, "CompleteClaim");
    }
  }

  async keepForDisabledDevice(
    serialNumber: string,
    claimId: string,
    result: { certificateId: string; thingName: string; publicKeyFingerprint: string; at: string },
  ): Promise<boolean> {
    return this.conditionalUpdate("KeepForDisabledDevice", {
      Key: keys.device(serialNumber),
      UpdateExpression:
        "SET certificateId = :cert, thingName = :thing, publicKeyFingerprint = :fp, provisionedAt = :at, " +
        "updatedAt = :at, #version = #version + :one REMOVE #claim, activatedCertificateId",
      ConditionExpression: "#claim.id = :claimId AND #status = :disabled",
      ExpressionAttributeNames: { "#claim": "claim", "#status": "status", "#version": "version" },
      ExpressionAttributeValues: {
        ":cert": result.certificateId,
        ":thing": result.thingName,
        ":fp": result.publicKeyFingerprint,
        ":at": result.at,
        ":one": 1,
        ":claimId": claimId,
        ":disabled": "disabled",
      },
    });
  }

  async commitRotation(serialNumber: string, claimId: string, rotation: PendingRotation): Promise<boolean> {
    return this.conditionalUpdate("CommitRotation", {
      Key: keys.device(serialNumber),
      UpdateExpression: "SET rotation = :rotation, updatedAt = :at, #version = #version + :one REMOVE #claim",
      ConditionExpression:
        "#claim.id = :claimId AND attribute_not_exists(#claim.cancelled) AND #status = :provisioned AND certificateId = :previous",
      ExpressionAttributeNames: { "#claim": "claim", "#status": "status", "#version": "version" },
      ExpressionAttributeValues: {
        ":rotation": rotation,
        ":claimId": claimId,
        ":provisioned": "provisioned",
        ":previous": rotation.previousCertificateId,
        ":at": rotation.requestedAt,
        ":one": 1,
      },
    });
  }

  async completeRotation(serialNumber: string, rotation: PendingRotation): Promise<boolean> {
    return this.conditionalUpdate("CompleteRotation", {
      Key: keys.device(serialNumber),
      UpdateExpression:
        "SET certificateId = :cert, publicKeyFingerprint = :fp, activatedCertificateId = :cert, " +
        "updatedAt = :now, #version = #version + :one REMOVE rotation",
      ConditionExpression: "rotation.certificateId = :cert AND certificateId = :previous",
      ExpressionAttributeNames: { "#version": "version" },
      ExpressionAttributeValues: {
        ":cert": rotation.certificateId,
        ":fp": rotation.publicKeyFingerprint,
        ":previous": rotation.previousCertificateId,
        ":now": new Date().toISOString(),
        ":one": 1,
      },
    });
  }

  async commitSecretLogin(serialNumber: string, thingName: string, at: string): Promise<boolean> {
    return this.conditionalUpdate("CommitSecretLogin", {
      Key: keys.device(serialNumber),
      UpdateExpression:
        "SET #status = :provisioned, thingName = :thing, provisionedAt = :at, updatedAt = :at, #version = #version + :one",
      ConditionExpression: "#status = :registered",
      ExpressionAttributeNames: { "#status": "status", "#version": "version" },
      ExpressionAttributeValues: {
        ":provisioned": "provisioned",
        ":registered": "registered",
        ":thing": thingName,
        ":at": at,
        ":one": 1,
      },
    });
  }

  async issueCredential(
    serialNumber: string,
    version: number,
    credential: { sealedSecret: string } | { deviceTokenHash: string; sealedToken: string },
    at: string,
  ): Promise<boolean> {
    const token = "deviceTokenHash" in credential;
    return this.conditionalUpdate("IssueCredential", {
      Key: keys.device(serialNumber),
      UpdateExpression: token
        ? "SET deviceTokenHash = :hash, sealedToken = :sealed, credentialIssuedAt = :at, updatedAt = :at, #version = #version + :one REMOVE sealedSecret"
        : "SET sealedSecret = :sealed, credentialIssuedAt = :at, updatedAt = :at, #version = #version + :one REMOVE deviceTokenHash, sealedToken",
      ConditionExpression: "#version = :version AND #status = :registered",
      ExpressionAttributeNames: { "#version": "version", "#status": "status" },
      ExpressionAttributeValues: {
        ...(token
          ? { ":hash": credential.deviceTokenHash, ":sealed": credential.sealedToken }
          : { ":sealed": credential.sealedSecret }),
        ":at": at,
        ":one": 1,
        ":version": version,
        ":registered": "registered",
      },
    });
  }

  async createDevice(device: NewDevice): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: deviceItem(device, new Date().toISOString()),
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw translateAwsError(error, "CreateDevice");
    }
  }

  async resetRegistration(
    serialNumber: string,
    version: number,
    options: { forgetSecret: boolean },
  ): Promise<boolean> {
    return this.conditionalUpdate("ResetRegistration", {
      Key: keys.device(serialNumber),
      UpdateExpression:
        "SET #status = :registered, updatedAt = :now, #version = #version + :one " +
        `REMOVE ${options.forgetSecret ? "sealedSecret, " : ""}deviceTokenHash, sealedToken, credentialIssuedAt, provisionedAt`,
      ConditionExpression: "#version = :version AND #status IN (:registered, :provisioned)",
      ExpressionAttributeNames: { "#version": "version", "#status": "status" },
      ExpressionAttributeValues: {
        ":registered": "registered",
        ":provisioned": "provisioned",
        ":now": new Date().toISOString(),
        ":one": 1,
        ":version": version,
      },
    });
  }

  async releaseClaim(serialNumber: string, claimId: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.device(serialNumber),
          UpdateExpression: "SET #version = #version + :one REMOVE #claim",
          ConditionExpression: "#claim.id = :claimId",
          ExpressionAttributeNames: { "#claim": "claim", "#version": "version" },
          ExpressionAttributeValues: { ":claimId": claimId, ":one": 1 },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) return;
      throw translateAwsError(error, "ReleaseClaim");
    }
  }

  async setDeviceStatus(
    serialNumber: string,
    status: DeviceStatus,
    options: { from: readonly DeviceStatus[]; reason?: string },
  ): Promise<Device> {
    const { reason } = options;
    // Read, then write conditional on the version read: the write also cancels a live claim, and
    // whether there is one is known only from the read. A concurrent write makes the condition
    // fail and the loop starts over from a fresh read (never a blind overwrite).
    for (let attempt = 0; ; attempt++) {
      const current = await this.getDevice(serialNumber);
      if (!current) throw new NotFoundError(`No device with serial number ${serialNumber}.`);
      if (!options.from.includes(current.status)) {
        throw new ConflictError(
          "WRONG_STATUS",
          `Device ${serialNumber} is ${current.status}; this change needs it to be ${options.from.join(" or ")}.`,
        );
      }
      const cancelClaim = current.claim !== undefined && current.claim.cancelled !== true;
      const set = ["#status = :status", "updatedAt = :now", "#version = #version + :one"];
      if (reason) set.push("statusReason = :reason");
      if (cancelClaim) set.push("#claim.cancelled = :true");
      try {
        const { Attributes } = await this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.device(serialNumber),
            UpdateExpression: `SET ${set.join(", ")}${reason ? "" : " REMOVE statusReason"}`,
            ConditionExpression: "#version = :version",
            ExpressionAttributeNames: {
              "#status": "status",
              "#version": "version",
              ...(cancelClaim ? { "#claim": "claim" } : {}),
            },
            ExpressionAttributeValues: {
              ":status": status,
              ":now": new Date().toISOString(),
              ":one": 1,
              ":version": current.version,
              ...(reason ? { ":reason": reason } : {}),
              ...(cancelClaim ? { ":true": true } : {}),
            },
            ReturnValues: "ALL_NEW",
          }),
        );
        return toDevice(Attributes ?? {});
      } catch (error) {
        if (!isConditionFailed(error)) throw translateAwsError(error, "SetDeviceStatus");
        if (attempt >= MAX_BATCH_ATTEMPTS) {
          throw new ConflictError("BUSY", `Device ${serialNumber} keeps changing; retry.`, 1);
        }
        await this.sleep(backoff(attempt));
      }
    }
  }

  async markActivated(serialNumber: string, certificateId: string): Promise<boolean> {
    return this.conditionalUpdate("MarkActivated", {
      Key: keys.device(serialNumber),
      UpdateExpression: "SET activatedCertificateId = :cert",
      ConditionExpression: "certificateId = :cert",
      ExpressionAttributeValues: { ":cert": certificateId },
    });
  }

  async forgetCertificate(serialNumber: string, certificateId: string): Promise<boolean> {
    return this.conditionalUpdate("ForgetCertificate", {
      Key: keys.device(serialNumber),
      UpdateExpression:
        "SET #status = :registered, updatedAt = :now, #version = #version + :one " +
        "REMOVE certificateId, activatedCertificateId, publicKeyFingerprint, provisionedAt",
      ConditionExpression: "certificateId = :cert AND #status = :provisioned",
      ExpressionAttributeNames: { "#status": "status", "#version": "version" },
      ExpressionAttributeValues: {
        ":cert": certificateId,
        ":registered": "registered",
        ":provisioned": "provisioned",
        ":now": new Date().toISOString(),
        ":one": 1,
      },
    });
  }

  /** One conditional UpdateItem: true when written, false when its condition failed. */
  private async conditionalUpdate(
    operation: string,
    input: Omit<ConstructorParameters<typeof UpdateCommand>[0], "TableName">,
  ): Promise<boolean> {
    try {
      await this.client.send(new UpdateCommand({ TableName: this.tableName, ...input }));
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw translateAwsError(error, operation);
    }
  }

  async use(scope: string, nonce: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...keys.nonce(scope, nonce), expiresAt: Math.ceil(expiresAtMs / 1000), expiresAtMs },
          ConditionExpression: "attribute_not_exists(pk) OR expiresAtMs < :now",
          ExpressionAttributeValues: { ":now": nowMs },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw translateAwsError(error, "UseNonce");
    }
  }
}

function backoff(attempt: number): number {
  return Math.random() * Math.min(2000, 50 * 2 ** attempt);
}

function deviceItem(device: NewDevice, now: string): Item {
  return {
    ...keys.device(device.serialNumber),
    gsi1pk: `PRODUCT#${device.productKey}`,
    gsi1sk: device.serialNumber,
    serialNumber: device.serialNumber,
    productKey: device.productKey,
    status: "registered",
    version: 1,
    createdAt: now,
    updatedAt: now,
    ...(device.sealedSecret ? { sealedSecret: device.sealedSecret } : {}),
  };
}

function strip(item: Item): Item {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...rest } = item;
  return rest;
}

function toProduct(item: Item): Product {
  return strip(item) as Product;
}

function toDevice(item: Item): Device {
  return strip(item) as Device;
}
