import { type DynamoDBDocumentClient, UpdateCommand, type UpdateCommandInput } from "@aws-sdk/lib-dynamodb";
import { isConditionFailed, translateAwsError } from "./aws-errors.ts";

/**
 * What the DynamoDB adapters share (registry, bindings, JITR ledger, budget, product binding,
 * sealed secrets): conditional writes whose failed condition is an answer, not an error, and
 * paging through a Query or Scan. Each adapter keeps its own keys, expressions and item mapping.
 */

/** An item as the document client reads and writes it. */
export type Item = Record<string, unknown>;

/**
 * Runs one conditional write (PutItem, UpdateItem, DeleteItem): its output, or undefined when its
 * condition failed (ConditionalCheckFailedException, the port's documented "no"). Any other SDK
 * error becomes a domain error (`translateAwsError`), named after `operation`.
 */
export async function conditionalWrite<T>(
  operation: string,
  write: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await write();
  } catch (error) {
    if (isConditionFailed(error)) return undefined;
    throw translateAwsError(error, operation);
  }
}

/**
 * One conditional UpdateItem on `tableName`: the attributes it returned (`{}` when `ReturnValues`
 * asks for none), or undefined when its condition failed ({@link conditionalWrite}).
 */
export async function updateIf(
  client: DynamoDBDocumentClient,
  tableName: string,
  operation: string,
  input: Omit<UpdateCommandInput, "TableName">,
): Promise<Item | undefined> {
  const output = await conditionalWrite(operation, () =>
    client.send(new UpdateCommand({ TableName: tableName, ...input })),
  );
  return output ? (output.Attributes ?? {}) : undefined;
}

/** A Query or Scan page as the document client returns it. */
type Page = { Items?: Item[]; LastEvaluatedKey?: Item };

/**
 * The pages of a Query or Scan: `read` gets each page's start key (undefined for the first page;
 * the caller passes it as `ExclusiveStartKey`, and translates or retries errors its own way) until
 * a page comes back without LastEvaluatedKey. Lazy: the next page is read when it is asked for.
 */
export async function* pages(read: (start: Item | undefined) => Promise<Page>): AsyncGenerator<Item[]> {
  let start: Item | undefined;
  do {
    const page = await read(start);
    yield page.Items ?? [];
    start = page.LastEvaluatedKey;
  } while (start);
}

/** Every item of a Query or Scan, page after page ({@link pages}). */
export async function allItems(read: (start: Item | undefined) => Promise<Page>): Promise<Item[]> {
  const items: Item[] = [];
  for await (const page of pages(read)) items.push(...page);
  return items;
}

/**
 * An expiring item's two clocks: `expiresAt` (epoch seconds, the table's TTL attribute, rounded
 * up) and `expiresAtMs`, which readers compare, since DynamoDB's TTL deletes late and dynalite never.
 */
export function expiry(expiresAtMs: number): { expiresAtMs: number; expiresAt: number } {
  return { expiresAtMs, expiresAt: Math.ceil(expiresAtMs / 1000) };
}
