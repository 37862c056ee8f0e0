/**
 * The shape both of our DynamoDB tables share (the registry, `registry-table.ts`, and the binding
 * table, `binding-table.ts`): string `pk`/`sk` keys, one all-attributes `gsi1` index and a TTL
 * attribute. One design constant per table; CDK (`tableFromDesign`, lib/constructs/table-from-design.ts)
 * and the local stack ({@link createTableInput}) build the table from it, so both create the same.
 */
export type TableDesign = {
  readonly partitionKey: string;
  readonly sortKey: string;
  readonly gsi1: { readonly name: string; readonly partitionKey: string; readonly sortKey: string };
  /** Epoch seconds; DynamoDB deletes late and dynalite never does, so readers compare it too. */
  readonly ttlAttribute: string;
};

/** CreateTable input for a table of this design (the local stack and tests; CDK mirrors it). */
export function createTableInput(design: TableDesign, tableName: string) {
  const { partitionKey, sortKey, gsi1 } = design;
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
