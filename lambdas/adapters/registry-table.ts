/**
 * The registry's single-table design, shared by the CDK construct and the local stack so both
 * create the same table.
 *
 * | item     | pk                         | sk        | gsi1pk               | gsi1sk        |
 * |----------|----------------------------|-----------|----------------------|---------------|
 * | product  | PRODUCT#{productKey}       | PRODUCT   | PRODUCTS             | {productKey}  |
 * | device   | DEVICE#{serialNumber}      | DEVICE    | PRODUCT#{productKey} | {serialNumber}|
 * | nonce    | NONCE#{scope}#{nonce}      | NONCE     | -                    | -             |
 *
 * `expiresAt` (epoch seconds) is the TTL attribute; readers also compare it, since DynamoDB
 * deletes expired items late and dynalite never does.
 */
export const registryTable = {
  partitionKey: "pk",
  sortKey: "sk",
  gsi1: { name: "gsi1", partitionKey: "gsi1pk", sortKey: "gsi1sk" },
  ttlAttribute: "expiresAt",
} as const;

export const keys = {
  product: (productKey: string) => ({ pk: `PRODUCT#${productKey}`, sk: "PRODUCT" }),
  device: (serialNumber: string) => ({ pk: `DEVICE#${serialNumber}`, sk: "DEVICE" }),
  nonce: (scope: string, nonce: string) => ({ pk: `NONCE#${scope}#${nonce}`, sk: "NONCE" }),
} as const;

/** CreateTable input for the registry (used by the local stack and tests; CDK mirrors it). */
export function registryTableDefinition(tableName: string) {
  const { partitionKey, sortKey, gsi1 } = registryTable;
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST" as const,
    AttributeDefinitions: [partitionKey, sortKey, gsi1.partitionKey, gsi1.sortKey].map((name) => ({
      AttributeName: name,
      AttributeType: "S" as const,
    })),
    KeySchema: [
      { AttributeName: partitionKey, KeyType: "HASH" as const },
      { AttributeName: sortKey, KeyType: "RANGE" as const },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: gsi1.name,
        KeySchema: [
          { AttributeName: gsi1.partitionKey, KeyType: "HASH" as const },
          { AttributeName: gsi1.sortKey, KeyType: "RANGE" as const },
        ],
        Projection: { ProjectionType: "ALL" as const },
      },
    ],
  };
}
