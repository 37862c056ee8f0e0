import type { CfnFunction, Function as LambdaFunction } from "aws-cdk-lib/aws-lambda";
import type { Node } from "constructs";
import type { IotQuotas } from "#core/admission/quota-profile.ts";
import {
  jitrConsumers,
  jitrRegistrationsPerSecond,
  MAX_QUEUE_CONCURRENCY,
  MIN_QUEUE_CONCURRENCY,
} from "#core/jitr/budget.ts";

/**
 * The environment variables the Lambda wiring (`lambdas/entrypoints/lambda-wiring.ts` and the
 * entries) requires. The wiring reads them by name and fails fast when one is missing; the
 * constructs set them and the bench sets dummy values so a bundle can be loaded outside Lambda.
 * `test/lib/vend-function.test.ts` checks that every `requireEnv("…")` of the wiring is listed here.
 */
export const LAMBDA_SETTINGS = {
  /** Name of the registry table (DynamoDB). */
  registryTableName: "REGISTRY_TABLE_NAME",
  /** Prefix of the product secrets in Secrets Manager (`onramp/products/`). */
  productSecretPrefix: "PRODUCT_SECRET_PREFIX",
  /** Name of the registry key secret (`onramp/registry-key`). */
  registryKeySecretName: "REGISTRY_KEY_SECRET_NAME",
  /** Binding functions only: name of the device–user binding table (DynamoDB). */
  bindingTableName: "BINDING_TABLE_NAME",
  /** Vend only: the provisioning budget, per second (lambdas/core/admission/quota-profile.ts). */
  provisioningRate: "PROVISIONING_RATE",
  /** Vend only: the items the budget is split over (1,000 writes/s per DynamoDB key). */
  provisioningShards: "PROVISIONING_SHARDS",
  /** JITR only: URL of its work queue (a failed message's retry delay is set there). */
  jitrQueueUrl: "JITR_QUEUE_URL",
  /** JITR only: registrations per second one consumer may start (the budget over the consumers). */
  jitrRegistrationsPerSecond: "JITR_REGISTRATIONS_PER_SECOND",
} as const;

/** Every setting name in {@link LAMBDA_SETTINGS}. */
export const LAMBDA_SETTING_NAMES: readonly string[] = Object.values(LAMBDA_SETTINGS);

/**
 * Reserved concurrency per function, and JITR's consumers, from CDK context:
 *
 * | context key                     | default | meaning |
 * |---------------------------------|---------|---------|
 * | `reservedConcurrency`           | `true`  | `false`: reserve nothing (an account whose concurrency quota is below what the defaults need) |
 * | `vendReservedConcurrency`       | `50`    | the vend function (admission control answers 429 fast; 10 rps × ~1 s fits many times) |
 * | `authorizerReservedConcurrency` | `100`   | the custom authorizer (lib/config.ts reads it; this is the default when it is unset) |
 * | `fleetHookReservedConcurrency`  | `20`    | the pre-provisioning hook (5 s deadline; fleet is bound by CreateCertificateFromCsr's 15 TPS) |
 * | `jitrRegistrationsPerSecond`    | from `iotQuotas` (10 at AWS's defaults) | JITR's budget: the quotas' TPS over JITR's calls (lambdas/core/jitr/budget.ts) |
 * | `jitrMaxConcurrency`            | budget × 0.5 s, 2–1000 | the JITR queue's event source maximum concurrency |
 * | `jitrReservedConcurrency`       | `jitrMaxConcurrency` | JITR's reserved concurrency (at least the maximum concurrency) |
 * | `lambdaAccountConcurrency`      | `1000`  | the account's concurrent executions quota, to check the reservations fit |
 *
 * Why: with no reservation a burst of one function (a JITR storm, a connect storm on the
 * authorizer) takes the account's whole pool and throttles the others, e.g. the fleet hook with
 * its 5 s deadline. Reserving both guarantees and caps each. Lambda keeps at least 100 of the
 * account's concurrency unreserved ("You can reserve up to the Unreserved account concurrency value
 * minus 100", https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html), so the
 * defaults (50 + 100 + 20 + 5 = 175) fit a new account's 1,000 with 825 left; a synth whose
 * reservations leave less than 100 fails here, naming the keys. Accounts start lower than 1,000 in
 * some cases: set `lambdaAccountConcurrency`, or `reservedConcurrency=false`.
 *
 * JITR: the event source's maximum concurrency (not reserved concurrency) is what limits an SQS
 * consumer without throttling it (the poller stops reading; a throttled invocation would return
 * its messages to the queue, https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html);
 * the reservation, at least as large, guarantees those consumers exist.
 */
export type ConcurrencySettings = {
  /** Reserved concurrency per function; absent: none. */
  reserved: { vend?: number; authorizer?: number; fleetHook?: number; jitr?: number };
  jitr: {
    /** Registrations per second for all consumers together. */
    registrationsPerSecond: number;
    /** The event source's maximum concurrency (2–1000). */
    maxConcurrency: number;
    /** What one consumer may start per second (registrationsPerSecond / maxConcurrency). */
    perConsumerPerSecond: number;
  };
};

export const DEFAULT_RESERVED_CONCURRENCY = { vend: 50, authorizer: 100, fleetHook: 20 } as const;

/** Lambda keeps this much of the account's concurrency unreserved. */
export const MIN_UNRESERVED_CONCURRENCY = 100;

/** Reads {@link ConcurrencySettings} from context; throws naming the key on a bad value. */
export function readConcurrencySettings(
  node: Node,
  authorizerReservedConcurrency?: number,
  /** The account's AWS IoT TPS (lib/config.ts `iotQuotas`); JITR's budget follows them. */
  iotQuotas?: IotQuotas,
): ConcurrencySettings {
  const read = (key: string): string | undefined => {
    const value: unknown = node.tryGetContext(key);
    return value === undefined || value === null || value === "" ? undefined : String(value);
  };
  const whole = (key: string, fallback: number, min = 1, max = 100_000): number => {
    const raw = read(key);
    if (raw === undefined) return fallback;
    const number = Number(raw);
    if (!Number.isInteger(number) || number < min || number > max) {
      throw new Error(`Context ${key} must be a whole number from ${min} to ${max}, not "${raw}".`);
    }
    return number;
  };
  const enabled = read("reservedConcurrency") ?? "true";
  if (enabled !== "true" && enabled !== "false") {
    throw new Error(`Context reservedConcurrency must be true or false, not "${enabled}".`);
  }
  const rateRaw = read("jitrRegistrationsPerSecond");
  const registrationsPerSecond =
    rateRaw === undefined ? jitrRegistrationsPerSecond(iotQuotas) : Number(rateRaw);
  if (!(registrationsPerSecond > 0 && registrationsPerSecond <= 10_000)) {
    throw new Error(
      `Context jitrRegistrationsPerSecond must be a number above 0 (at most 10000), not "${rateRaw}".`,
    );
  }
  const maxConcurrency = whole(
    "jitrMaxConcurrency",
    jitrConsumers(registrationsPerSecond),
    MIN_QUEUE_CONCURRENCY,
    MAX_QUEUE_CONCURRENCY,
  );
  const jitr = {
    registrationsPerSecond,
    maxConcurrency,
    perConsumerPerSecond: registrationsPerSecond / maxConcurrency,
  };
  if (enabled === "false") {
    return {
      reserved: authorizerReservedConcurrency ? { authorizer: authorizerReservedConcurrency } : {},
      jitr,
    };
  }
  const reserved = {
    vend: whole("vendReservedConcurrency", DEFAULT_RESERVED_CONCURRENCY.vend),
    authorizer: authorizerReservedConcurrency ?? DEFAULT_RESERVED_CONCURRENCY.authorizer,
    fleetHook: whole("fleetHookReservedConcurrency", DEFAULT_RESERVED_CONCURRENCY.fleetHook),
    jitr: whole("jitrReservedConcurrency", maxConcurrency),
  };
  if (reserved.jitr < maxConcurrency) {
    throw new Error(
      `Context jitrReservedConcurrency (${reserved.jitr}) must be at least jitrMaxConcurrency (${maxConcurrency}): fewer would throttle the queue's consumers.`,
    );
  }
  const account = whole("lambdaAccountConcurrency", 1000);
  const total = reserved.vend + reserved.authorizer + reserved.fleetHook + reserved.jitr;
  if (account - total < MIN_UNRESERVED_CONCURRENCY) {
    throw new Error(
      `Reserved concurrency ${total} (vend ${reserved.vend}, authorizer ${reserved.authorizer}, fleet hook ${reserved.fleetHook}, JITR ${reserved.jitr}) leaves ${account - total} of lambdaAccountConcurrency ${account} unreserved; Lambda needs at least ${MIN_UNRESERVED_CONCURRENCY}. Lower the *ReservedConcurrency keys or set reservedConcurrency=false.`,
    );
  }
  return { reserved, jitr };
}

/**
 * Sets a function's reserved concurrency after it was built (the constructs of the vend function
 * and the fleet hook take no such prop); `undefined` leaves it unreserved.
 */
export function reserveConcurrency(fn: LambdaFunction, reserved: number | undefined): void {
  if (reserved === undefined) return;
  (fn.node.defaultChild as CfnFunction).reservedConcurrentExecutions = reserved;
}
