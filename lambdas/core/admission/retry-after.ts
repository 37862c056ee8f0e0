/**
 * Retry-After for a caller that has to wait `waitMs` for its place in the backlog, in whole
 * seconds (the HTTP header has no fractions), with jitter so callers told the same second do not
 * come back in lock-step: ceil(wait + u) seconds with u uniform in [0, 1), so the answer is
 * ceil(wait) or ceil(wait) + 1, never less than 1. `random` is injectable for tests.
 */
export function retryAfterSeconds(waitMs: number, random: () => number = Math.random): number {
  const u = Math.min(Math.max(random(), 0), 0.999_999);
  return Math.max(1, Math.ceil(Math.max(0, waitMs) / 1000 + u));
}
