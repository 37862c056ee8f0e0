/** What one take from the provisioning budget answered. */
export type BudgetTake =
  | { admitted: true }
  /** Over budget: the time (ms since the epoch) this caller's place in the backlog comes up. */
  | { admitted: false; retryAtMs: number };

/**
 * The account's provisioning budget: a rate of provisionings per second shared by every flow that
 * spends AWS IoT's control-plane quotas (vend, JITR, the fleet hook, rotation, bulk) and by every
 * Lambda instance, so it lives in a shared store (DynamoDB, `adapters/dynamodb-provisioning-budget.ts`).
 * `take` spends one provisioning or, over budget, hands out the next free place in the backlog.
 */
export interface ProvisioningBudget {
  /** Provisionings per second this budget admits. */
  readonly ratePerSecond: number;
  take(now: number): Promise<BudgetTake>;
}
