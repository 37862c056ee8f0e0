import { DeleteCommand, type DynamoDBDocumentClient, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { registryTable } from "#adapters/registry-table.ts";
import { type Logger, silentLogger } from "#core/logger.ts";

/** How often the local stack sweeps by default. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

export type ExpiredItemSweeper = {
  /** One pass: deletes every item whose `expiresAt` (epoch seconds) is past; returns how many. */
  sweepOnce(): Promise<number>;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
};

/**
 * DynamoDB's TTL for the local stack (dynalite has none): every `intervalMs`, scans one table (the
 * registry or the binding table: both use `registryTable`'s key and TTL attribute names) for items
 * whose TTL attribute is in the past and deletes each with a condition that it is still expired
 * (an item renewed meanwhile stays). The timer does not keep the process alive.
 */
export function startExpiredItemSweeper(options: {
  client: DynamoDBDocumentClient;
  tableName: string;
  intervalMs?: number;
  now?: () => number;
  logger?: Logger;
}): ExpiredItemSweeper {
  const { client, tableName } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
  const now = options.now ?? Date.now;
  const logger = options.logger ?? silentLogger;
  const { partitionKey, sortKey, ttlAttribute } = registryTable;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;

  const sweepOnce = async (): Promise<number> => {
    const values = { ":now": Math.floor(now() / 1000) };
    const names = { "#pk": partitionKey, "#sk": sortKey, "#expiresAt": ttlAttribute };
    let deleted = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({
          TableName: tableName,
          FilterExpression: "#expiresAt < :now",
          ProjectionExpression: "#pk, #sk",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        try {
          await client.send(
            new DeleteCommand({
              TableName: tableName,
              Key: { [partitionKey]: item[partitionKey], [sortKey]: item[sortKey] },
              ConditionExpression: "#expiresAt < :now",
              ExpressionAttributeNames: { "#expiresAt": ttlAttribute },
              ExpressionAttributeValues: values,
            }),
          );
          deleted += 1;
        } catch (error) {
          if (!(error instanceof Error) || error.name !== "ConditionalCheckFailedException") throw error;
        }
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey && !stopped);
    return deleted;
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sweepOnce()
        .then((deleted) => {
          if (deleted > 0) logger.debug("expired items swept", { deleted });
          return deleted;
        })
        .catch((error: unknown) => {
          logger.warn("sweeping expired items failed; retrying next interval", { error: String(error) });
          return 0;
        })
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, intervalMs);
    timer.unref();
  };
  schedule();

  return {
    sweepOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
