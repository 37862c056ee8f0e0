import { type DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";
import type { LedgerBegin, LedgerSettlement, RegistrationLedger } from "#core/jitr/ports.ts";
import { aws } from "./aws-errors.ts";
import { updateIf } from "./dynamodb-items.ts";

/**
 * The JITR ledger: one item per certificate in the registry table, `pk = JITR#{certificateId}`,
 * `sk = JITR` (no gsi1 attributes, so it stays out of the index), with `expiresAt` (epoch seconds,
 * the table's TTL attribute). Every write is one conditional UpdateItem, so the JITR function needs
 * no grant beyond the GetItem/UpdateItem it has.
 *
 * | attribute   | meaning                                                                 |
 * |-------------|-------------------------------------------------------------------------|
 * | state       | `leased` (a message is registering it) or `settled`                     |
 * | owner       | the leasing message's id                                                |
 * | leaseUntil  | ms; a lease past it is free (its consumer died; its message returns)    |
 * | settledAt   | ms; events published before it repeat the settled registration          |
 * | outcome     | activated, already-active, ignored, rejected:<reason> (for operators)   |
 */
export const jitrLedgerKey = (certificateId: string) => ({ pk: `JITR#${certificateId}`, sk: "JITR" });

export class DynamoDbJitrLedger implements RegistrationLedger {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async begin(
    certificateId: string,
    lease: { owner: string; now: number; leaseMs: number; eventTimestamp: number },
  ): Promise<LedgerBegin> {
    const leaseUntil = lease.now + lease.leaseMs;
    const taken = await updateIf(this.client, this.tableName, "BeginJitrRegistration", {
      Key: jitrLedgerKey(certificateId),
      UpdateExpression:
        "SET #state = :leased, #owner = :owner, leaseUntil = :until, expiresAt = :expires REMOVE settledAt, outcome",
      // Free: no record; a lease whose consumer died; a settlement older than this event; a
      // record past its TTL (DynamoDB deletes late, dynalite never).
      ConditionExpression:
        "attribute_not_exists(pk) OR (#state = :leased AND leaseUntil < :now) OR " +
        "(#state = :settled AND settledAt < :event) OR expiresAt < :nowSeconds",
      ExpressionAttributeNames: { "#state": "state", "#owner": "owner" },
      ExpressionAttributeValues: {
        ":leased": "leased",
        ":settled": "settled",
        ":owner": lease.owner,
        ":until": leaseUntil,
        ":expires": Math.ceil(leaseUntil / 1000),
        ":now": lease.now,
        ":event": lease.eventTimestamp,
        ":nowSeconds": Math.floor(lease.now / 1000),
      },
    });
    if (taken) return { state: "taken" };
    // Held or settled: which one (a consistent read; only repeats get here).
    const { Item } = await aws("ReadJitrRegistration", () =>
      this.client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: jitrLedgerKey(certificateId),
          ConsistentRead: true,
        }),
      ),
    );
    if (Item?.state === "leased" && typeof Item.leaseUntil === "number") {
      return { state: "leased", leaseUntil: Item.leaseUntil };
    }
    return { state: "settled" };
  }

  async settle(certificateId: string, owner: string, settlement: LedgerSettlement): Promise<void> {
    await this.ownerUpdate("SettleJitrRegistration", certificateId, owner, {
      UpdateExpression:
        "SET #state = :settled, settledAt = :at, outcome = :outcome, expiresAt = :expires REMOVE leaseUntil, #owner",
      values: {
        ":settled": "settled",
        ":at": settlement.settledAt,
        ":outcome": settlement.outcome,
        ":expires": Math.ceil(settlement.expiresAt / 1000),
      },
    });
  }

  async release(certificateId: string, owner: string): Promise<void> {
    // A zero lease is free at once (UpdateItem, not DeleteItem: the function has no DeleteItem grant).
    await this.ownerUpdate("ReleaseJitrRegistration", certificateId, owner, {
      UpdateExpression: "SET leaseUntil = :zero REMOVE #owner",
      values: { ":zero": 0 },
    });
  }

  /** An update conditional on `owner` still holding the lease; a lost lease is left alone. */
  private async ownerUpdate(
    operation: string,
    certificateId: string,
    owner: string,
    update: { UpdateExpression: string; values: Record<string, unknown> },
  ): Promise<void> {
    await updateIf(this.client, this.tableName, operation, {
      Key: jitrLedgerKey(certificateId),
      UpdateExpression: update.UpdateExpression,
      ConditionExpression: "#state = :leased AND #owner = :owner",
      ExpressionAttributeNames: { "#state": "state", "#owner": "owner" },
      ExpressionAttributeValues: { ...update.values, ":leased": "leased", ":owner": owner },
    });
  }
}
