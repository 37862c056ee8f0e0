import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from "@aws-sdk/lib-dynamodb";
import {
  ConflictError,
  DependencyThrottledError,
  DomainError,
  NotFoundError,
  ValidationError,
} from "#core/errors.ts";
import type { Device, DeviceClaim, DeviceStatus, PendingRotation, Product } from "#core/registry/model.ts";
import type { ImportOutcome, NewDevice, NonceStore, Registry } from "#core/registry/ports.ts";
import { aws, translateAwsError } from "./aws-errors.ts";
import { allItems, conditionalWrite, expiry, type Item, pages, updateIf } from "./dynamodb-items.ts";
import { DEVICE_SHARDS, keys, productDevices, registryTable } from "./registry-table.ts";

const BATCH_GET_LIMIT = 100;
const BATCH_WRITE_LIMIT = 25;
const MAX_BATCH_ATTEMPTS = 8;
/** A listing or migration query throttled this many times in a row is reported (an operator waits). */
const MAX_THROTTLED_READS = 8;
/** Import backoff: 50 ms doubling per failure in a row, capped at 5 s, full jitter. */
const IMPORT_BACKOFF_BASE_MS = 50;
const IMPORT_BACKOFF_CAP_MS = 5_000;
/** How long a product read stays fresh; products change rarely (a change applies within this). */
const PRODUCT_CACHE_MS = 30_000;

type ListSource = { partition: string; items: Item[]; state: "fresh" | "more" | "done"; next?: Item };

/** The serial-number registry on one DynamoDB table (see registry-table.ts for the design). */
export class DynamoDbRegistry implements Registry, NonceStore {
  /** Products found recently (never absences), so the vending path reads each once per interval. */
  private readonly products = new Map<string, { product: Product; at: number }>();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly options: { productCacheMs?: number; clock?: () => number; random?: () => number } = {},
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
    const written = await conditionalWrite("CreateProduct", () =>
      this.client.send(
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
      ),
    );
    if (!written) throw new ConflictError("PRODUCT_EXISTS", `Product ${product.productKey} already exists.`);
  }

  async listProducts(): Promise<Product[]> {
    const items = await allItems((start) =>
      aws("ListProducts", () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: registryTable.gsi1.name,
            KeyConditionExpression: "gsi1pk = :p",
            ExpressionAttributeValues: { ":p": "PRODUCTS" },
            ExclusiveStartKey: start,
          }),
        ),
      ),
    );
    return items.map(toProduct);
  }

  async getDevice(serialNumber: string): Promise<Device | undefined> {
    const { Item } = await aws("GetDevice", () =>
      this.client.send(
        new GetCommand({ TableName: this.tableName, Key: keys.device(serialNumber), ConsistentRead: true }),
      ),
    );
    return Item ? toDevice(Item) : undefined;
  }

  /**
   * One page of a product's devices in serial order, merged from the product's gsi1 shard keys
   * and the pre-sharding key (rows not migrated yet). Every key sorts by serial, so the page ends
   * at a serial S and every key's position is "after S": the opaque cursor carries S, and each
   * key's next query starts with `gsi1sk > S`. A cursor from before sharding (a LastEvaluatedKey)
   * is read the same way.
   */
  async listDevices(
    productKey: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<{ devices: Device[]; cursor?: string }> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError("limit must be a whole number from 1 to 1000.");
    }
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    // Each key gets about twice its share of a page per query; a key that runs dry is asked again.
    const perQuery = Math.min(limit, Math.max(10, Math.ceil((2 * limit) / DEVICE_SHARDS)));
    const sources: ListSource[] = [
      ...Array.from({ length: DEVICE_SHARDS }, (_, shard) => productDevices.shardKey(productKey, shard)),
      productDevices.legacyKey(productKey),
    ].map((partition) => ({ partition, items: [], state: "fresh" }));
    const fill = async (source: ListSource) => {
      const page = await this.withThrottleRetry("ListDevices", () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: registryTable.gsi1.name,
            KeyConditionExpression: after === undefined ? "gsi1pk = :p" : "gsi1pk = :p AND gsi1sk > :after",
            ExpressionAttributeValues: {
              ":p": source.partition,
              ...(after === undefined ? {} : { ":after": after }),
            },
            Limit: perQuery,
            ...(source.state === "more" ? { ExclusiveStartKey: source.next } : {}),
          }),
        ),
      );
      source.items.push(...(page.Items ?? []));
      source.next = page.LastEvaluatedKey;
      source.state = page.LastEvaluatedKey ? "more" : "done";
    };
    const items: Item[] = [];
    while (items.length < limit) {
      const empty = sources.filter((s) => s.items.length === 0 && s.state !== "done");
      if (empty.length > 0) {
        await Promise.all(empty.map(fill));
        continue;
      }
      let next: ListSource | undefined;
      for (const source of sources) {
        const head = source.items[0];
        if (head && (!next || String(head.gsi1sk) < String(next.items[0]!.gsi1sk))) next = source;
      }
      if (!next) break;
      const item = next.items.shift()!;
      // A row being migrated can show under both keys for a moment (the index is eventually consistent).
      if (items.at(-1)?.gsi1sk !== item.gsi1sk) items.push(item);
    }
    const devices = items.map(toDevice);
    const more = sources.some((s) => s.items.length > 0 || s.state === "more");
    const last = items.at(-1);
    return more && last ? { devices, cursor: encodeCursor(String(last.gsi1sk)) } : { devices };
  }

  /**
   * Moves a product's rows written before sharding (gsi1pk `PRODUCT#{productKey}`) to their shard
   * key, each with an UpdateItem conditional on the old key (a concurrent migrate or write wins).
   * Idempotent; readers see every row before, during and after it.
   */
  async migrateDeviceKeys(
    productKey: string,
    onProgress?: (moved: number) => void,
  ): Promise<{ moved: number; skipped: number }> {
    const legacy = productDevices.legacyKey(productKey);
    let moved = 0;
    let skipped = 0;
    const legacyRows = pages((start) =>
      this.withThrottleRetry("MigrateDeviceKeys", () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: registryTable.gsi1.name,
            KeyConditionExpression: "gsi1pk = :p",
            ExpressionAttributeValues: { ":p": legacy },
            ProjectionExpression: "pk, sk, gsi1pk, gsi1sk, serialNumber",
            Limit: 100,
            ExclusiveStartKey: start,
          }),
        ),
      ),
    );
    for await (const page of legacyRows) {
      const results = await Promise.all(
        page.map((item) =>
          this.withThrottleRetry("MigrateDeviceKeys", () =>
            this.conditionalUpdate("MigrateDeviceKeys", {
              Key: keys.device(String(item.serialNumber)),
              UpdateExpression: "SET gsi1pk = :shard",
              ConditionExpression: "gsi1pk = :legacy",
              ExpressionAttributeValues: {
                ":shard": productDevices.forSerial(productKey, String(item.serialNumber)),
                ":legacy": legacy,
              },
            }),
          ),
        ),
      );
      for (const done of results) done ? moved++ : skipped++;
      onProgress?.(moved);
    }
    return { moved, skipped };
  }

  /**
   * Imports devices with BatchWriteItem. BatchWriteItem cannot be conditional, so existing
   * serials are first filtered out with BatchGetItem: a re-run never resets a provisioned device.
   * The remaining window (another import creating and a device provisioning the same serial
   * between the two calls) is documented in ARCHITECTURE.md. Unprocessed items and throttling are
   * retried with exponential backoff and full jitter for as long as it takes (never an abort:
   * DynamoDB answers them when a partition or an index is over its throughput, which passes);
   * any other failure is thrown after the SDK's own retries.
   */
  async importDevices(devices: NewDevice[]): Promise<ImportOutcome> {
    const outcome: ImportOutcome = {
      written: 0,
      skippedExisting: 0,
      unprocessedRetries: 0,
      throttledRetries: 0,
    };
    for (let start = 0; start < devices.length; start += BATCH_GET_LIMIT) {
      const chunk = devices.slice(start, start + BATCH_GET_LIMIT);
      const existing = await this.existingSerials(
        chunk.map((d) => d.serialNumber),
        outcome,
      );
      const fresh = chunk.filter((d) => !existing.has(d.serialNumber));
      outcome.skippedExisting += chunk.length - fresh.length;
      const now = new Date().toISOString();
      for (let i = 0; i < fresh.length; i += BATCH_WRITE_LIMIT) {
        const requests = fresh.slice(i, i + BATCH_WRITE_LIMIT).map((d) => ({
          PutRequest: { Item: deviceItem(d, now) },
        }));
        await this.batchWrite(requests, outcome);
        outcome.written += requests.length;
      }
    }
    return outcome;
  }

  private async existingSerials(serials: string[], stats: ImportOutcome): Promise<Set<string>> {
    const found = new Set<string>();
    await this.untilProcessed(
      "BatchGetItem",
      serials.map((s): Item => keys.device(s)),
      async (pending) => {
        const result = await this.client.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: pending, ProjectionExpression: "serialNumber" } },
          }),
        );
        for (const item of result.Responses?.[this.tableName] ?? []) found.add(String(item.serialNumber));
        return (result.UnprocessedKeys?.[this.tableName]?.Keys as Item[] | undefined) ?? [];
      },
      stats,
    );
    return found;
  }

  private async batchWrite(requests: { PutRequest: { Item: Item } }[], stats: ImportOutcome): Promise<void> {
    await this.untilProcessed(
      "BatchWriteItem",
      requests,
      async (pending) => {
        const result = await this.client.send(
          new BatchWriteCommand({ RequestItems: { [this.tableName]: pending } }),
        );
        return (result.UnprocessedItems?.[this.tableName] ?? []) as typeof requests;
      },
      stats,
    );
  }

  /**
   * Sends `pending` until nothing comes back unprocessed. Unprocessed items and throttling errors
   * sleep {@link importBackoff} (exponential, full jitter, capped) and retry, without limit: the
   * BatchWriteItem reference asks for exactly this
   * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html:
   * unprocessed items "should" be retried "using exponential backoff"; when none can be processed
   * the call fails with ProvisionedThroughputExceededException). Other errors are thrown.
   */
  private async untilProcessed<T>(
    operation: string,
    first: T[],
    send: (pending: T[]) => Promise<T[]>,
    stats: { unprocessedRetries: number; throttledRetries: number },
  ): Promise<void> {
    let pending = first;
    // Calls in a row that moved nothing: the first retry waits up to 50 ms, each next one twice that.
    let failures = 0;
    const pause = () => this.sleep(importBackoff(failures, this.options.random));
    while (pending.length > 0) {
      let rest: T[];
      try {
        rest = await send(pending);
      } catch (error) {
        const translated = translateAwsError(error, operation);
        if (!(translated instanceof DependencyThrottledError)) throw translated;
        stats.throttledRetries++;
        await pause();
        failures++;
        continue;
      }
      if (rest.length > 0) {
        stats.unprocessedRetries++;
        await pause();
        // Progress (some items went through) keeps the delay; none at all doubles it.
        if (rest.length >= pending.length) failures++;
      }
      pending = rest;
    }
  }

  /** One call, retried on throttling as {@link untilProcessed} does; other errors translated. */
  private async withThrottleRetry<T>(operation: string, call: () => Promise<T>): Promise<T> {
    for (let failures = 0; ; failures++) {
      try {
        return await call();
      } catch (error) {
        const translated = error instanceof DomainError ? error : translateAwsError(error, operation);
        if (!(translated instanceof DependencyThrottledError) || failures >= MAX_THROTTLED_READS)
          throw translated;
        await this.sleep(importBackoff(failures, this.options.random));
      }
    }
  }

  async claimDevice(device: Device, claim: DeviceClaim, nowMs: number): Promise<Device | undefined> {
    const claimed = await conditionalWrite("ClaimDevice", () =>
      this.client.send(
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
      ),
    );
    return claimed?.Attributes ? toDevice(claimed.Attributes) : undefined;
  }

  async recordClaimCertificate(serialNumber: string, claimId: string, certificateId: string): Promise<void> {
    const recorded = await this.conditionalUpdate("RecordClaimCertificate", {
      Key: keys.device(serialNumber),
      UpdateExpression: "SET #claim.certificateId = :cert",
      ConditionExpression: "#claim.id = :claimId",
      ExpressionAttributeNames: { "#claim": "claim" },
      ExpressionAttributeValues: { ":cert": certificateId, ":claimId": claimId },
    });
    if (!recorded)
      throw new ConflictError("PROVISIONING_IN_PROGRESS", "The provisioning claim expired; retry.");
  }

  async completeClaim(
    serialNumber: string,
    claimId: string,
    result: { certificateId: string; thingName: string; publicKeyFingerprint: string; at: string },
  ): Promise<boolean> {
    return this.conditionalUpdate("CompleteClaim", {
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
    });
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
    const written = await conditionalWrite("CreateDevice", () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: deviceItem(device, new Date().toISOString()),
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      ),
    );
    return written !== undefined;
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
    // A claim that is no longer this one (expired and taken over, or already released) is left alone.
    await this.conditionalUpdate("ReleaseClaim", {
      Key: keys.device(serialNumber),
      UpdateExpression: "SET #version = #version + :one REMOVE #claim",
      ConditionExpression: "#claim.id = :claimId",
      ExpressionAttributeNames: { "#claim": "claim", "#version": "version" },
      ExpressionAttributeValues: { ":claimId": claimId, ":one": 1 },
    });
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
      const updated = await updateIf(this.client, this.tableName, "SetDeviceStatus", {
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
      });
      if (updated) return toDevice(updated);
      if (attempt >= MAX_BATCH_ATTEMPTS) {
        throw new ConflictError("BUSY", `Device ${serialNumber} keeps changing; retry.`, 1);
      }
      await this.sleep(backoff(attempt));
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

  /** One conditional UpdateItem ({@link updateIf}): true when written, false when its condition failed. */
  private async conditionalUpdate(
    operation: string,
    input: Omit<UpdateCommandInput, "TableName">,
  ): Promise<boolean> {
    return (await updateIf(this.client, this.tableName, operation, input)) !== undefined;
  }

  async use(scope: string, nonce: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    const written = await conditionalWrite("UseNonce", () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...keys.nonce(scope, nonce), ...expiry(expiresAtMs) },
          ConditionExpression: "attribute_not_exists(pk) OR expiresAtMs < :now",
          ExpressionAttributeValues: { ":now": nowMs },
        }),
      ),
    );
    return written !== undefined;
  }
}

function backoff(attempt: number): number {
  return Math.random() * Math.min(2000, 50 * 2 ** attempt);
}

/**
 * "Full jitter" exponential backoff: uniform in [0, min(cap, base * 2^failures)). Jitter keeps
 * concurrent batches (and concurrent imports) from retrying in lock-step.
 */
export function importBackoff(failures: number, random: () => number = Math.random): number {
  return random() * Math.min(IMPORT_BACKOFF_CAP_MS, IMPORT_BACKOFF_BASE_MS * 2 ** Math.min(failures, 20));
}

/** The list cursor: the last serial of a page, opaque to callers. */
function encodeCursor(afterSerial: string): string {
  return Buffer.from(JSON.stringify({ after: afterSerial })).toString("base64url");
}

function decodeCursor(cursor: string): string {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString());
  } catch {
    throw new ValidationError("cursor is not one this command printed.");
  }
  const fields = (value ?? {}) as { after?: unknown; gsi1sk?: unknown };
  // `after`: ours; `gsi1sk`: a cursor printed before sharding (DynamoDB's LastEvaluatedKey).
  const after = fields.after ?? fields.gsi1sk;
  if (typeof after !== "string" || after.length === 0) {
    throw new ValidationError("cursor is not one this command printed.");
  }
  return after;
}

function deviceItem(device: NewDevice, now: string): Item {
  return {
    ...keys.device(device.serialNumber),
    gsi1pk: productDevices.forSerial(device.productKey, device.serialNumber),
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
