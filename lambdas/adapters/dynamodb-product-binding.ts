import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { ProductBindingStore } from "#core/binding/product-binding.ts";
import type { ProductBinding } from "#core/registry/model.ts";
import { updateIf } from "./dynamodb-items.ts";
import { keys } from "./registry-table.ts";

/** A product's binding setting in the registry table (the product item's `binding` attribute). */
export class DynamoDbProductBinding implements ProductBindingStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async setProductBinding(productKey: string, binding: ProductBinding): Promise<boolean> {
    const updated = await updateIf(this.client, this.tableName, "SetProductBinding", {
      Key: keys.product(productKey),
      UpdateExpression: "SET binding = :b",
      ConditionExpression: "attribute_exists(pk)",
      ExpressionAttributeValues: { ":b": binding },
    });
    return updated !== undefined;
  }
}
