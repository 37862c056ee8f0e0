import { RemovalPolicy } from "aws-cdk-lib";
import type { Table } from "aws-cdk-lib/aws-dynamodb";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";
import { bindingTable } from "#adapters/binding-table.ts";
import { tableFromDesign } from "./table-from-design.ts";

/** Settings of {@link BindingTable}. */
export type BindingTableProps = {
  /** RETAIN (default) keeps the table, and blocks deletion, when the stack goes away. */
  removalPolicy?: RemovalPolicy;
  /** The registry's customer managed key, when the registry uses one; else the AWS managed key. */
  encryptionKey?: IKey;
};

/**
 * Device–user bindings (issue 11): one DynamoDB table built from the constants the adapter and the
 * local stack use (`lambdas/adapters/binding-table.ts`): `pk`/`sk`, `gsi1` (a user's devices, all
 * attributes) and `expiresAt` as the TTL attribute (tokens and failed-bind windows expire; bindings
 * and audit records do not). A table of its own rather than items in the registry: its keys are
 * (productKey, deviceName) and user ids, not serials, its write pattern (tokens every few minutes per
 * device during set-up) is not the registry's, and a product's owners must never share a hot key
 * with the product's devices.
 */
export class BindingTable extends Construct {
  /** The table. */
  readonly table: Table;

  constructor(scope: Construct, id: string, props: BindingTableProps = {}) {
    super(scope, id);
    this.table = tableFromDesign(this, bindingTable, {
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      encryptionKey: props.encryptionKey,
    });
  }
}
