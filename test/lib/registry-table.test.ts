import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Match } from "aws-cdk-lib/assertions";
import { registryTable } from "#adapters/registry-table.ts";
import { createTableInput } from "#adapters/table-design.ts";
import { defaultApp, fullOptionsApp, resourceAt } from "./app-fixture.ts";

const sortByName = <T extends { AttributeName: string }>(items: T[]) =>
  [...items].sort((a, b) => a.AttributeName.localeCompare(b.AttributeName));

describe("lib/constructs/registry-table", () => {
  it("builds the table from the adapter's constants: keys, gsi1 (ALL), TTL, on-demand, PITR", () => {
    const table = resourceAt(
      defaultApp().registryTemplate,
      "AWS::DynamoDB::Table",
      "RegistryTable",
    ).Properties;
    assert.deepEqual(table.KeySchema, [
      { AttributeName: registryTable.partitionKey, KeyType: "HASH" },
      { AttributeName: registryTable.sortKey, KeyType: "RANGE" },
    ]);
    assert.equal(table.BillingMode, "PAY_PER_REQUEST");
    assert.deepEqual(table.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
    assert.deepEqual(table.TimeToLiveSpecification, { AttributeName: "expiresAt", Enabled: true });
    assert.deepEqual(table.GlobalSecondaryIndexes, [
      {
        IndexName: "gsi1",
        KeySchema: [
          { AttributeName: "gsi1pk", KeyType: "HASH" },
          { AttributeName: "gsi1sk", KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "ALL" },
      },
    ]);
  });

  it("matches the CreateTable input the local stack uses (createTableInput)", () => {
    const table = resourceAt(
      defaultApp().registryTemplate,
      "AWS::DynamoDB::Table",
      "RegistryTable",
    ).Properties;
    const local = createTableInput(registryTable, "registry");
    assert.deepEqual(sortByName(table.AttributeDefinitions), sortByName(local.AttributeDefinitions));
    assert.deepEqual(table.KeySchema, local.KeySchema);
    assert.deepEqual(table.GlobalSecondaryIndexes, local.GlobalSecondaryIndexes);
    assert.equal(table.BillingMode, local.BillingMode);
  });

  it("is retained and deletion-protected by default, encrypted with the AWS managed key", () => {
    const { registryTemplate, registry } = defaultApp();
    registryTemplate.hasResource("AWS::DynamoDB::Table", {
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: Match.objectLike({
        DeletionProtectionEnabled: true,
        SSESpecification: { SSEEnabled: true },
      }),
    });
    registryTemplate.resourceCountIs("AWS::KMS::Key", 0);
    assert.equal(registry.terminationProtection, true);
  });

  it("with destroyOnRemoval and customer-managed encryption: deletable, own rotating KMS key", () => {
    const { registryTemplate, registry } = fullOptionsApp();
    registryTemplate.hasResource("AWS::DynamoDB::Table", {
      DeletionPolicy: "Delete",
      Properties: Match.objectLike({
        DeletionProtectionEnabled: false,
        SSESpecification: {
          SSEEnabled: true,
          SSEType: "KMS",
          KMSMasterKeyId: { "Fn::GetAtt": [Match.stringLikeRegexp("^RegistryKey"), "Arn"] },
        },
      }),
    });
    registryTemplate.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
    assert.equal(registry.terminationProtection, false);
  });

  it("exports the table name and ARN under stable names", () => {
    const outputs = defaultApp().registryTemplate.toJSON().Outputs;
    assert.deepEqual(outputs.RegistryTableName.Export, { Name: "IotOnramp-RegistryTableName" });
    assert.deepEqual(outputs.RegistryTableArn.Export, { Name: "IotOnramp-RegistryTableArn" });
  });
});
