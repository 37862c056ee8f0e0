/**
 * Sizing the provisioning budget from AWS IoT's control-plane quotas.
 *
 * Default TPS per operation, per account and region: the API throttling table of "AWS IoT Core
 * endpoints and quotas" (https://docs.aws.amazon.com/general/latest/gr/iot-core.html); the figures
 * are the ones issue 14 quotes from it. Our docs search finds that page and RegisterThing's note
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterThing.html: it "calls other AWS
 * IoT control plane APIs" that count against the account's limits) but not the table's rows, so a
 * deployment with raised quotas passes its own numbers (`iotQuotas` in CDK context).
 * local/iot/quotas.ts enforces this same table in the emulator.
 */
export const AWS_DEFAULT_IOT_TPS = {
  RegisterThing: 10,
  UpdateCertificate: 10,
  DescribeCertificate: 10,
  DeleteCertificate: 10,
  CreateCertificateFromCsr: 15,
  AttachPolicy: 15,
  CreateThing: 100,
  AttachThingPrincipal: 100,
  AddThingToThingGroup: 100,
} as const satisfies Record<string, number>;

export type IotOperation = keyof typeof AWS_DEFAULT_IOT_TPS;
export type IotQuotas = Record<IotOperation, number>;

/**
 * Calls each flow makes on the throttled operations for one successful provisioning (the hot
 * path; undo and replays are extra and rare). ARCHITECTURE.md "Admission control" has the table
 * with the ceilings; test/admission/vend-admission.test.ts measures the vend rows on the emulator.
 * JITR and rotation run the product's template through RegisterThing (their certificates exist
 * before the registry decides, so the direct path's ordering does not apply as it does to a vend).
 */
export const FLOW_CALLS = {
  vendDirect: {
    CreateCertificateFromCsr: 1,
    CreateThing: 1,
    AttachThingPrincipal: 1,
    AddThingToThingGroup: 1,
  },
  vendTemplate: { CreateCertificateFromCsr: 1, RegisterThing: 1, UpdateCertificate: 1 },
  /** lambdas/core/jitr/register-device-certificate.ts: the event's certificate, its thing, activation. */
  jitr: { DescribeCertificate: 1, RegisterThing: 1, UpdateCertificate: 1 },
  /** lambdas/core/rotation/rotate-certificate.ts: the new certificate on the device's thing. */
  rotation: { CreateCertificateFromCsr: 1, RegisterThing: 1, UpdateCertificate: 1 },
} as const satisfies Record<string, Partial<Record<IotOperation, number>>>;

/** The highest provisioning rate a flow sustains under `quotas` (its tightest operation). */
export function flowCeiling(calls: Partial<Record<IotOperation, number>>, quotas: IotQuotas): number {
  let ceiling = Number.POSITIVE_INFINITY;
  for (const [operation, count] of Object.entries(calls) as [IotOperation, number][]) {
    if (count > 0) ceiling = Math.min(ceiling, quotas[operation] / count);
  }
  return ceiling;
}

/**
 * The shared budget: one token per provisioning, at the rate every flow sustains (the lowest
 * ceiling), so any mix of flows stays within every operation's quota. AWS defaults: 10/s.
 */
export function provisioningRate(quotas: IotQuotas): number {
  return Math.min(...Object.values(FLOW_CALLS).map((calls) => flowCeiling(calls, quotas)));
}

/**
 * Budget shards: one DynamoDB partition key takes at most 1,000 write units a second. An admitted
 * take writes once; a refused one up to three times (the failed conditional write still costs a
 * unit, then the backlog's two), and with devices honouring Retry-After about one refusal comes per
 * admission, so a shard (one key) is kept at ≤ 250 provisionings a second: ≤ 250 × (1 + 3) = 1,000.
 */
export const MAX_RATE_PER_SHARD = 250;
export function budgetShards(ratePerSecond: number): number {
  return Math.max(1, Math.ceil(ratePerSecond / MAX_RATE_PER_SHARD));
}

/**
 * Reads a quota profile: `aws-default`, or a JSON object of raised TPS by operation (the others
 * keep their defaults), e.g. `{"RegisterThing":100,"UpdateCertificate":100}`. Throws with the
 * operation's name on a bad value.
 */
export function parseQuotaProfile(text: string): IotQuotas {
  if (text === "aws-default") return { ...AWS_DEFAULT_IOT_TPS };
  let raised: unknown;
  try {
    raised = JSON.parse(text);
  } catch {
    throw new Error('iotQuotas must be "aws-default" or a JSON object of TPS by operation.');
  }
  if (typeof raised !== "object" || raised === null || Array.isArray(raised)) {
    throw new Error('iotQuotas must be "aws-default" or a JSON object of TPS by operation.');
  }
  const quotas: IotQuotas = { ...AWS_DEFAULT_IOT_TPS };
  for (const [operation, value] of Object.entries(raised)) {
    if (!(operation in AWS_DEFAULT_IOT_TPS)) {
      throw new Error(
        `iotQuotas: unknown operation ${operation} (known: ${Object.keys(AWS_DEFAULT_IOT_TPS).join(", ")}).`,
      );
    }
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > 100_000) {
      throw new Error(`iotQuotas.${operation} must be a number of transactions per second (0 < n ≤ 100000).`);
    }
    quotas[operation as IotOperation] = value;
  }
  return quotas;
}
