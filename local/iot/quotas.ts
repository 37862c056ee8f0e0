/**
 * AWS IoT's rate quotas, enforced locally when asked (`npm start -- --aws-quotas default`): a token
 * bucket per control-plane operation (burst = rate) answering AWS's `ThrottlingException` ("The
 * rate exceeds the limit", HTTP 400 in the service model, see errors.ts), and a bucket per MQTT
 * client id for the broker's CONNECT limit. Off by default.
 *
 * Sources:
 * - CONNECT per client id: "AWS IoT limits MQTT CONNECT requests from the same accountId and
 *   clientId to 1 MQTT CONNECT operation per second" (not adjustable), and 500 CONNECT/s per
 *   account: https://docs.aws.amazon.com/iot/latest/developerguide/limits-iot.html (Message
 *   Broker Limits); the current list is https://docs.aws.amazon.com/general/latest/gr/iot-core.html.
 * - Per-operation TPS: the API throttling table of
 *   https://docs.aws.amazon.com/general/latest/gr/iot-core.html#throttling-limits; the figures
 *   below are the ones issue 14 quotes from it (our docs search found the page and RegisterThing's
 *   note that it "calls other AWS IoT control plane APIs" which "might exceed your account level
 *   AWS IoT Throttling Limits", not the table's rows: check the page before relying on a figure).
 */
import { AWS_DEFAULT_IOT_TPS } from "#core/admission/quota-profile.ts";
import { IotServiceError } from "./errors.ts";

/** Milliseconds since some origin; `Date.now` unless a test injects its own. */
export type Clock = () => number;

/** A token bucket: `rate` tokens per second, holding at most `burst` (full at start). */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly rate: number,
    readonly burst: number = rate,
    private readonly now: Clock = Date.now,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError("A token bucket needs rate > 0 and burst >= 1.");
    this.tokens = burst;
    this.updatedAt = now();
  }

  /** Takes one token if there is one; false means over the rate. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when the bucket is full again (nothing to remember about its past). */
  isFull(): boolean {
    this.refill();
    return this.tokens >= this.burst;
  }

  private refill(): void {
    const now = this.now();
    const elapsed = Math.max(0, now - this.updatedAt) / 1000;
    this.updatedAt = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
  }
}

/** `default`: AWS's default quotas; `off`: no rate limits (the default of the local stack). */
export type AwsQuotaProfile = "default" | "off";
export const AWS_QUOTA_PROFILES: readonly AwsQuotaProfile[] = ["default", "off"];

/**
 * AWS IoT's default TPS per control-plane operation (per account and region), the one table the
 * provisioning budget is sized from (lambdas/core/admission/quota-profile.ts). Operations not
 * listed are not throttled locally (AWS's quotas for them are far above what the local flows use).
 */
export const DEFAULT_OPERATION_TPS: Readonly<Record<string, number>> = AWS_DEFAULT_IOT_TPS;

/** AWS IoT Core's MQTT CONNECT limit per client id (per second, not adjustable). */
export const CONNECTS_PER_SECOND_PER_CLIENT_ID = 1;

/** The per-operation quotas of a profile, or undefined when it is `off`. */
export function operationQuotas(
  profile: AwsQuotaProfile,
  now: Clock = Date.now,
): OperationQuotas | undefined {
  return profile === "default" ? new OperationQuotas(DEFAULT_OPERATION_TPS, now) : undefined;
}

/** The CONNECT limiter of a profile, or undefined when it is `off`. */
export function connectRateLimiter(
  profile: AwsQuotaProfile,
  now: Clock = Date.now,
): ConnectRateLimiter | undefined {
  return profile === "default" ? new ConnectRateLimiter(CONNECTS_PER_SECOND_PER_CLIENT_ID, now) : undefined;
}

/** One token bucket per operation of a TPS table. */
export class OperationQuotas {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    readonly table: Readonly<Record<string, number>>,
    now: Clock = Date.now,
  ) {
    for (const [operation, tps] of Object.entries(table))
      this.buckets.set(operation, new TokenBucket(tps, tps, now));
  }

  /** Spends one call of `operation`; returns the ThrottlingException to answer when over its rate. */
  take(operation: string): IotServiceError | undefined {
    const bucket = this.buckets.get(operation);
    if (!bucket || bucket.tryTake()) return undefined;
    return new IotServiceError("ThrottlingException", "Rate exceeded");
  }
}

/** A token bucket per MQTT client id (burst = rate); buckets that refilled are forgotten. */
export class ConnectRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    readonly perSecond: number = CONNECTS_PER_SECOND_PER_CLIENT_ID,
    private readonly now: Clock = Date.now,
    /** Sweep full buckets once this many client ids are remembered. */
    private readonly sweepAt = 10_000,
  ) {}

  /** True when a CONNECT with this client id is within the rate (and spends it). */
  tryConnect(clientId: string): boolean {
    let bucket = this.buckets.get(clientId);
    if (!bucket) {
      if (this.buckets.size >= this.sweepAt) this.sweep();
      bucket = new TokenBucket(this.perSecond, this.perSecond, this.now);
      this.buckets.set(clientId, bucket);
    }
    return bucket.tryTake();
  }

  private sweep(): void {
    for (const [clientId, bucket] of this.buckets) if (bucket.isFull()) this.buckets.delete(clientId);
  }
}
