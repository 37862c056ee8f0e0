import { DependencyThrottledError, DependencyUnavailableError, ValidationError } from "#core/errors.ts";

const throttling = new Set([
  "ThrottlingException",
  "TooManyRequestsException",
  "LimitExceededException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
]);
const invalid = new Set([
  "InvalidRequestException",
  "CertificateValidationException",
  "InvalidParameterException",
]);

/** True when `error` is an AWS SDK error with one of these names. */
export function isAwsError(error: unknown, ...names: string[]): boolean {
  return error instanceof Error && names.includes(error.name);
}

export function isConditionFailed(error: unknown): boolean {
  return isAwsError(error, "ConditionalCheckFailedException");
}

/**
 * Maps an AWS SDK error (after the SDK's own retries with backoff and jitter) to a domain error:
 * throttling becomes 429 with Retry-After, a rejected input 400, anything else 503. Nothing above
 * the adapters knows SDK error names.
 */
export function translateAwsError(error: unknown, operation: string): Error {
  const name = error instanceof Error ? error.name : "UnknownError";
  if (throttling.has(name)) {
    return new DependencyThrottledError(`${operation} is throttled; retry later.`, 2, { cause: error });
  }
  if (invalid.has(name)) {
    const detail = error instanceof Error ? error.message : "";
    return new ValidationError(`${operation} was rejected: ${detail}`, { cause: error });
  }
  return new DependencyUnavailableError(`${operation} failed.`, 2, { cause: error });
}

/** Runs one SDK call and translates its failure. */
export async function aws<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw translateAwsError(error, operation);
  }
}
