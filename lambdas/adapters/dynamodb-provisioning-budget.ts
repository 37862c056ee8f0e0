import { type DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { BudgetTake, ProvisioningBudget } from "#core/admission/ports.ts";
import { aws } from "./aws-errors.ts";
import { updateIf } from "./dynamodb-items.ts";
import { registryTable } from "./registry-table.ts";

export type ProvisioningBudgetSettings = {
  /** Provisionings per second for the whole account (lambdas/core/admission/quota-profile.ts). */
  ratePerSecond: number;
  /** Items the rate is split over (rate / shards each), so no item takes more writes than it can. */
  shards: number;
  /** Picks the shard; injectable for tests. */
  random?: () => number;
};

/** How long a window or queue item outlives its use before DynamoDB's TTL removes it (s). */
const ITEM_TTL_SECONDS = 120;

/**
 * The provisioning budget in the registry table, shared by every Lambda instance and flow.
 *
 * Each shard admits `rate / shards` per second in fixed windows of about half a second (`limit`
 * takes per window, window length `limit / shardRate`): a take is ONE conditional atomic counter
 * update (`ADD admitted 1` if below the limit), with no read and no version to conflict on, so
 * concurrent takes never exceed the limit and never retry each other. Windows of half a second
 * keep the largest burst (the end of one window and the start of the next) at the shard's rate,
 * the burst AWS's token buckets allow.
 *
 * Over budget, the caller gets the next free place of the shard's backlog: a queue item whose
 * `until` (ms) advances by one slot (1 / shardRate) per refusal (`ADD`, atomic), or restarts at the
 * next window when it has run out. Its Retry-After is computed from that place, so a thousand
 * refused devices are told a thousand different times, spread at the budget's rate.
 *
 * Items: pk `BUDGET#provisioning#{shard}`, sk `W#{window}` (counter) and `QUEUE`; `expiresAt` TTL.
 * The refused take tries a second shard first when there are several.
 */
export class DynamoDbProvisioningBudget implements ProvisioningBudget {
  readonly ratePerSecond: number;
  private readonly shards: number;
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly slotMs: number;
  private readonly random: () => number;

  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly tableName: string,
    settings: ProvisioningBudgetSettings,
  ) {
    if (!(settings.ratePerSecond > 0)) throw new RangeError("The provisioning budget needs a rate > 0.");
    if (!Number.isInteger(settings.shards) || settings.shards < 1) {
      throw new RangeError("The provisioning budget needs a whole number of shards ≥ 1.");
    }
    this.ratePerSecond = settings.ratePerSecond;
    this.shards = settings.shards;
    const shardRate = settings.ratePerSecond / settings.shards;
    this.limit = Math.max(1, Math.round(shardRate / 2));
    this.windowMs = (this.limit / shardRate) * 1000;
    this.slotMs = 1000 / shardRate;
    this.random = settings.random ?? Math.random;
  }

  async take(now: number): Promise<BudgetTake> {
    const first = Math.floor(this.random() * this.shards) % this.shards;
    if (await this.takeFrom(first, now)) return { admitted: true };
    if (this.shards > 1) {
      const second = (first + 1 + Math.floor(this.random() * (this.shards - 1))) % this.shards;
      if (await this.takeFrom(second, now)) return { admitted: true };
    }
    return { admitted: false, retryAtMs: await this.queue(first, now) };
  }

  private pk(shard: number): string {
    return `BUDGET#provisioning#${shard}`;
  }

  private async takeFrom(shard: number, now: number): Promise<boolean> {
    const window = Math.floor(now / this.windowMs);
    const taken = await updateIf(this.dynamo, this.tableName, "provisioning budget", {
      Key: { [registryTable.partitionKey]: this.pk(shard), [registryTable.sortKey]: `W#${window}` },
      UpdateExpression: "ADD admitted :one SET #ttl = :ttl",
      ConditionExpression: "attribute_not_exists(admitted) OR admitted < :limit",
      ExpressionAttributeNames: { "#ttl": registryTable.ttlAttribute },
      ExpressionAttributeValues: {
        ":one": 1,
        ":limit": this.limit,
        ":ttl": Math.ceil(((window + 1) * this.windowMs) / 1000) + ITEM_TTL_SECONDS,
      },
    });
    return taken !== undefined;
  }

  /** The refused caller's place: the shard's backlog end, one slot further (never in this window). */
  private async queue(shard: number, now: number): Promise<number> {
    const nextWindow = (Math.floor(now / this.windowMs) + 1) * this.windowMs;
    const key = { [registryTable.partitionKey]: this.pk(shard), [registryTable.sortKey]: "QUEUE" };
    const names = { "#ttl": registryTable.ttlAttribute };
    // An empty backlog (never used, or its last place has passed) starts at the next window.
    const started = await updateIf(this.dynamo, this.tableName, "provisioning budget", {
      Key: key,
      UpdateExpression: "SET #until = :start, #ttl = :ttl",
      ConditionExpression: "attribute_not_exists(#until) OR #until < :now",
      ExpressionAttributeNames: { ...names, "#until": "until" },
      ExpressionAttributeValues: {
        ":start": nextWindow,
        ":now": now,
        ":ttl": Math.ceil(nextWindow / 1000) + ITEM_TTL_SECONDS,
      },
    });
    if (started) return nextWindow;
    const out = await aws("provisioning budget", () =>
      this.dynamo.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: "ADD #until :slot SET #ttl = :ttl",
          ExpressionAttributeNames: { ...names, "#until": "until" },
          ExpressionAttributeValues: {
            ":slot": this.slotMs,
            // Refreshed on each refusal: the backlog's end is at most (refusals × slot) ahead.
            ":ttl": Math.ceil(now / 1000) + ITEM_TTL_SECONDS * 10,
          },
          ReturnValues: "UPDATED_NEW",
        }),
      ),
    );
    const until = Number(out.Attributes?.until);
    return Math.max(Number.isFinite(until) ? until : nextWindow, nextWindow);
  }
}
