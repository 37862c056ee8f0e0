/**
 * The SDK retry strategy of the synchronous provisioning path: at most `maxAttempts` attempts per
 * call, full-jitter exponential backoff (random × min(cap, base × 2^retry)) so the sleeps of one
 * call add up to at most `capMs × (maxAttempts − 1)`; client errors (4xx other than throttling)
 * are not retried. The SDK calls it through its RetryStrategyV2 interface (structural: no import
 * from the SDK's internals). ARCHITECTURE.md "Retries and timeouts" has the arithmetic.
 */
type RetryToken = { getRetryCount(): number; getRetryDelay(): number };
type RetryErrorInfo = { errorType: "TRANSIENT" | "THROTTLING" | "SERVER_ERROR" | "CLIENT_ERROR" };

export const RETRY_BASE_MS = 100;

export class BoundedRetryStrategy {
  readonly mode = "standard";

  constructor(
    readonly maxAttempts: number,
    readonly capMs: number,
    private readonly random: () => number = Math.random,
  ) {
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError("maxAttempts must be ≥ 1");
  }

  async acquireInitialRetryToken(_scope: string): Promise<RetryToken> {
    return token(0, 0);
  }

  async refreshRetryTokenForRetry(previous: RetryToken, error: RetryErrorInfo): Promise<RetryToken> {
    const retry = previous.getRetryCount() + 1;
    if (retry >= this.maxAttempts || error.errorType === "CLIENT_ERROR") {
      throw new Error("no more retries");
    }
    return token(retry, this.delayMs(retry));
  }

  /** The sleep before retry number `retry` (1-based): full jitter under the cap. */
  delayMs(retry: number): number {
    return Math.floor(this.random() * Math.min(this.capMs, RETRY_BASE_MS * 2 ** retry));
  }

  recordSuccess(_token: RetryToken): void {}
}

function token(count: number, delay: number): RetryToken {
  return { getRetryCount: () => count, getRetryDelay: () => delay };
}
