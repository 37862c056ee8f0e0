import { RemovalPolicy } from "aws-cdk-lib";
import type { Table } from "aws-cdk-lib/aws-dynamodb";
import { Key } from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";
import { registryTable } from "#adapters/registry-table.ts";
import { tableFromDesign } from "./table-from-design.ts";

/** Settings of {@link RegistryTable}. */
export type RegistryTableProps = {
  /** RETAIN (default) keeps the table, and blocks deletion, when the stack goes away. */
  removalPolicy?: RemovalPolicy;
  /** `aws-managed` (default) or `customer-managed`: a KMS key with yearly rotation, owned here. */
  encryption?: "aws-managed" | "customer-managed";
};

/**
 * The serial-number registry: one DynamoDB table built from the same constants the adapter and
 * the local stack use (`lambdas/adapters/registry-table.ts`): `pk`/`sk`, the `gsi1` index
 * (`gsi1pk`/`gsi1sk`, all attributes) and `expiresAt` as the TTL attribute. A product's devices
 * spread over 16 gsi1 partition keys (`PRODUCT#{productKey}#{shard}`), so no index key takes every
 * write of a product; the key values are the adapter's, the index itself is unchanged (an index's
 * projection or keys cannot change in place: see ARCHITECTURE.md, Registry table).
 */
export class RegistryTable extends Construct {
  /** The table. */
  readonly table: Table;
  /** The customer managed key, when `encryption` is `customer-managed`. */
  readonly encryptionKey?: Key;

  constructor(scope: Construct, id: string, props: RegistryTableProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    if (props.encryption === "customer-managed") {
      this.encryptionKey = new Key(this, "Key", {
        description: "iot-onramp registry table",
        enableKeyRotation: true,
        removalPolicy,
      });
    }
    this.table = tableFromDesign(this, registryTable, {
      removalPolicy,
      encryptionKey: this.encryptionKey,
    });
  }
}
