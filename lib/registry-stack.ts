import { CfnOutput, RemovalPolicy, Stack, type StackProps, Validations } from "aws-cdk-lib";
import type { Table } from "aws-cdk-lib/aws-dynamodb";
import type { Key } from "aws-cdk-lib/aws-kms";
import type { Construct } from "constructs";
import { BindingTable } from "./constructs/binding-table.ts";
import { RegistryTable } from "./constructs/registry-table.ts";
import { OnrampSecrets } from "./constructs/secrets.ts";
import { REGISTRY_OUTPUTS } from "./outputs.ts";

/** Settings of {@link RegistryStack}. */
export type RegistryStackProps = StackProps & {
  /** Prefix of the export names (`{exportPrefix}-RegistryTableName`, …). */
  exportPrefix: string;
  /** Dev only: delete the table and the registry key with the stack (default: retain both). */
  destroyOnRemoval?: boolean;
  tableEncryption?: "aws-managed" | "customer-managed";
};

/**
 * The stateful stack: the registry table and the registry key. Unless `destroyOnRemoval` is set
 * (dev only), both are retained when removed, the table is deletion-protected and the stack
 * termination-protected. The provisioning stack gets these resources by props.
 */
export class RegistryStack extends Stack {
  /** The registry table. */
  readonly table: Table;
  /** The table's customer managed key, if configured. */
  readonly tableEncryptionKey?: Key;
  /** The registry key secret and the product secret prefix. */
  readonly secrets: OnrampSecrets;
  /** Device-user bindings (issue 11); encrypted like the registry. */
  readonly bindingTable: Table;

  constructor(scope: Construct, id: string, props: RegistryStackProps) {
    const { exportPrefix, destroyOnRemoval = false, tableEncryption, ...stackProps } = props;
    super(scope, id, {
      description:
        "iot-onramp registry (stateful): device registry table, device-user binding table, registry key secret",
      terminationProtection: !destroyOnRemoval,
      ...stackProps,
    });
    const removalPolicy = destroyOnRemoval ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const registry = new RegistryTable(this, "Registry", {
      removalPolicy,
      ...(tableEncryption ? { encryption: tableEncryption } : {}),
    });
    this.table = registry.table;
    if (registry.encryptionKey) this.tableEncryptionKey = registry.encryptionKey;
    this.secrets = new OnrampSecrets(this, "Secrets", { removalPolicy });
    this.bindingTable = new BindingTable(this, "Bindings", {
      removalPolicy,
      ...(registry.encryptionKey ? { encryptionKey: registry.encryptionKey } : {}),
    }).table;

    Validations.of(this.secrets.registryKey).acknowledge({
      id: "AwsSolutions-SMG4",
      reason:
        "The registry key seals the stored per-device secrets (AES-256-GCM); rotating it without re-sealing every device row would make them unreadable. Rotation needs a re-seal job, which does not exist yet.",
    });

    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description, exportName: `${exportPrefix}-${id}` });
    output(REGISTRY_OUTPUTS.tableName, this.table.tableName, "DynamoDB table of the device registry");
    output(REGISTRY_OUTPUTS.tableArn, this.table.tableArn, "ARN of the device registry table");
    output(
      REGISTRY_OUTPUTS.productSecretPrefix,
      this.secrets.productSecretPrefix,
      "Secrets Manager name prefix of the product secrets ({prefix}{productKey})",
    );
    output(
      REGISTRY_OUTPUTS.registryKeySecretName,
      this.secrets.registryKeyName,
      "Secrets Manager name of the registry key",
    );
    output(
      REGISTRY_OUTPUTS.bindingTableName,
      this.bindingTable.tableName,
      "DynamoDB table of device-user bindings (tokens, owners, audit records)",
    );
    output(
      REGISTRY_OUTPUTS.registryKeySecretArn,
      this.secrets.registryKey.secretArn,
      "ARN of the registry key secret",
    );
  }
}
