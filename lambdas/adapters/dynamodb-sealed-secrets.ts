import { type DynamoDBDocumentClient, ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { SealedSecretRow, SealedSecretRows } from "#core/registry/rotate-registry-key.ts";
import { aws } from "./aws-errors.ts";
import { pages, updateIf } from "./dynamodb-items.ts";
import { keys } from "./registry-table.ts";

/**
 * The devices' sealed secrets in the registry table, as a registry key rotation reads and
 * rewrites them. A Scan (the operator's occasional job, not a request path) filtered to device
 * items that have a `sealedSecret`; each rewrite is conditional on the value read, so a device
 * whose secret changed meanwhile is never overwritten with the old one. The device's `version`
 * is left alone: a re-seal changes the ciphertext, not the secret, and must not make an
 * in-flight claim fail.
 */
export class DynamoDbSealedSecrets implements SealedSecretRows {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly pageSize = 500,
  ) {}

  async *listSealedSecrets(): AsyncGenerator<SealedSecretRow[]> {
    const scan = pages((start) =>
      aws("ScanSealedSecrets", () =>
        this.client.send(
          new ScanCommand({
            TableName: this.tableName,
            FilterExpression: "sk = :device AND attribute_exists(sealedSecret)",
            ProjectionExpression: "serialNumber, sealedSecret",
            ExpressionAttributeValues: { ":device": "DEVICE" },
            ConsistentRead: true,
            Limit: this.pageSize,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      ),
    );
    // A filtered page can be empty while more follow: only pages with rows are passed on.
    for await (const page of scan) {
      const rows = page.map((item) => ({
        serialNumber: String(item.serialNumber),
        sealedSecret: String(item.sealedSecret),
      }));
      if (rows.length > 0) yield rows;
    }
  }

  async replaceSealedSecret(serialNumber: string, expected: string, next: string): Promise<boolean> {
    const replaced = await updateIf(this.client, this.tableName, "ReplaceSealedSecret", {
      Key: keys.device(serialNumber),
      UpdateExpression: "SET sealedSecret = :next",
      ConditionExpression: "sealedSecret = :expected",
      ExpressionAttributeValues: { ":next": next, ":expected": expected },
    });
    return replaced !== undefined;
  }
}
