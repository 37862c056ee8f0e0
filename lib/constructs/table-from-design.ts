import { RemovalPolicy } from "aws-cdk-lib";
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from "aws-cdk-lib/aws-dynamodb";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { Construct } from "constructs";
import type { TableDesign } from "#adapters/table-design.ts";

/** Settings of {@link tableFromDesign}. */
export type TableFromDesignProps = {
  /** RETAIN keeps the table, and blocks its deletion, when the stack goes away. */
  removalPolicy: RemovalPolicy;
  /** A customer managed key; absent: the AWS managed key. */
  encryptionKey?: IKey | undefined;
};

/**
 * The DynamoDB table `Table` in `scope`, built from a design constant (the one the adapter and
 * the local stack's `createTableInput` use): string `pk`/`sk`, on-demand, point-in-time recovery,
 * the design's TTL attribute, encrypted (customer or AWS managed key), deletion-protected when
 * retained, and the all-attributes `gsi1` index. The registry and the binding table are built here.
 */
export function tableFromDesign(scope: Construct, design: TableDesign, props: TableFromDesignProps): Table {
  const { partitionKey, sortKey, gsi1, ttlAttribute } = design;
  const table = new Table(scope, "Table", {
    partitionKey: { name: partitionKey, type: AttributeType.STRING },
    sortKey: { name: sortKey, type: AttributeType.STRING },
    billingMode: BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    timeToLiveAttribute: ttlAttribute,
    ...(props.encryptionKey
      ? { encryption: TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }
      : { encryption: TableEncryption.AWS_MANAGED }),
    deletionProtection: props.removalPolicy === RemovalPolicy.RETAIN,
    removalPolicy: props.removalPolicy,
  });
  table.addGlobalSecondaryIndex({
    indexName: gsi1.name,
    partitionKey: { name: gsi1.partitionKey, type: AttributeType.STRING },
    sortKey: { name: gsi1.sortKey, type: AttributeType.STRING },
    projectionType: ProjectionType.ALL,
  });
  return table;
}
