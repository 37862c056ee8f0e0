import { DomainError } from "../errors.ts";
import type { ProvisioningBudget } from "./ports.ts";
import { retryAfterSeconds } from "./retry-after.ts";

/** Over the account's provisioning budget: 429 with a Retry-After taken from the backlog. */
export class ProvisioningBudgetExceededError extends DomainError {
  readonly kind = "throttled";
  readonly code = "PROVISIONING_BUDGET_EXCEEDED";
  override readonly retryAfterSeconds: number;
  constructor(retryAfter: number) {
    super("Provisioning is at its rate limit; retry after the number of seconds in Retry-After.");
    this.retryAfterSeconds = retryAfter;
  }
}

export type AdmissionDeps = {
  /** None: no admission control (the local stack without `--aws-quotas`, tests). */
  budget?: ProvisioningBudget;
  clock?: () => number;
  random?: () => number;
};

/**
 * Spends one provisioning from the shared budget or refuses at once (before any AWS IoT call) with
 * ProvisioningBudgetExceededError, whose Retry-After is the caller's place in the backlog plus jitter.
 */
export async function admitProvisioning(deps: AdmissionDeps): Promise<void> {
  if (!deps.budget) return;
  const now = (deps.clock ?? Date.now)();
  const take = await deps.budget.take(now);
  if (take.admitted) return;
  throw new ProvisioningBudgetExceededError(retryAfterSeconds(take.retryAtMs - now, deps.random));
}
