import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DynamoDbProvisioningBudget } from "#adapters/dynamodb-provisioning-budget.ts";
import { admitProvisioning, ProvisioningBudgetExceededError } from "#core/admission/admit-provisioning.ts";
import type { BudgetTake } from "#core/admission/ports.ts";
import {
  AWS_DEFAULT_IOT_TPS,
  budgetShards,
  parseQuotaProfile,
  provisioningRate,
} from "#core/admission/quota-profile.ts";
import { retryAfterSeconds } from "#core/admission/retry-after.ts";
import { type LocalDynamo, startLocalDynamo } from "#local/dynamodb.ts";

/**
 * The provisioning budget against dynalite (the same conditional updates DynamoDB runs), with an
 * injected clock: what is admitted in each window never exceeds the budget however many takes run
 * in parallel, and refused takes get distinct places in the backlog at the budget's rate.
 */
describe("provisioning budget (DynamoDB, injected clock)", () => {
  let dynamo: LocalDynamo;
  const table = "registry";
  let run = 0;
  // Each test its own epoch, so windows and queues of earlier tests do not meet.
  const epoch = () => 1_900_000_000_000 + run++ * 10_000_000;

  before(async () => {
    dynamo = await startLocalDynamo({ port: 0, host: "127.0.0.1", tableName: table });
  });
  after(async () => dynamo.close());

  const budget = (ratePerSecond: number, shards = 1) =>
    new DynamoDbProvisioningBudget(dynamo.documentClient, table, { ratePerSecond, shards });
  const admitted = (takes: BudgetTake[]) => takes.filter((t) => t.admitted).length;

  it("N parallel takes in one instant: exactly the window's share is admitted (rate 10: 5 per half second)", async () => {
    const t0 = epoch();
    const b = budget(10);
    const takes = await Promise.all(Array.from({ length: 40 }, () => b.take(t0)));
    assert.equal(admitted(takes), 5);
    // Refused takes are told 35 different places, one slot (100 ms) apart, from the next window on.
    const places = takes.flatMap((t) => (t.admitted ? [] : [t.retryAtMs])).sort((a, b) => a - b);
    assert.equal(new Set(places).size, 35);
    assert.ok(places[0]! >= t0 + 500 - (t0 % 500));
    for (let i = 1; i < places.length; i++) assert.equal(places[i]! - places[i - 1]!, 100);
  });

  it("over consecutive windows, admitted ≤ rate × elapsed + one window, never more", async () => {
    const t0 = epoch() - (epoch() % 500);
    const b = budget(10);
    let total = 0;
    for (let step = 0; step < 8; step++) {
      const now = t0 + step * 250; // two takes of 20 per window
      total += admitted(await Promise.all(Array.from({ length: 20 }, () => b.take(now))));
      const elapsedSeconds = (step * 250) / 1000;
      assert.ok(total <= 10 * elapsedSeconds + 5, `${total} admitted after ${elapsedSeconds}s`);
    }
    assert.equal(total, 20); // 4 windows × 5
  });

  it("a backlog that has passed starts again at the next window", async () => {
    const t0 = epoch() - (epoch() % 500);
    const b = budget(10);
    await Promise.all(Array.from({ length: 8 }, () => b.take(t0))); // 3 queued, up to t0 + 700
    const later = t0 + 60_000;
    const takes = await Promise.all(Array.from({ length: 7 }, () => b.take(later)));
    const places = takes.flatMap((t) => (t.admitted ? [] : [t.retryAtMs])).sort((a, b) => a - b);
    assert.deepEqual(places, [later + 500, later + 600]);
  });

  it("sharded (rate 1,000 over 4 shards): parallel takes stay within the sum of the shards' windows", async () => {
    const rate = 1000;
    const shards = budgetShards(rate);
    assert.equal(shards, 4);
    const t0 = epoch() - (epoch() % 1000);
    const b = budget(rate, shards);
    const takes = await Promise.all(Array.from({ length: 900 }, () => b.take(t0)));
    // Each shard: 250 / 2 = 125 per window of 0.5 s.
    assert.ok(admitted(takes) <= 4 * 125, `${admitted(takes)} admitted`);
    assert.ok(admitted(takes) >= 125, "at least one shard's window is used");
  });

  it("admitProvisioning: 429 at once with the backlog's Retry-After (jittered)", async () => {
    const t0 = epoch() - (epoch() % 500);
    const b = budget(10);
    const errors: number[] = [];
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        try {
          await admitProvisioning({ budget: b, clock: () => t0, random: () => 0 });
        } catch (error) {
          assert.ok(error instanceof ProvisioningBudgetExceededError);
          assert.equal(error.kind, "throttled");
          errors.push(error.retryAfterSeconds);
        }
      }),
    );
    assert.equal(errors.length, 25);
    // 25 places 100 ms apart from t0 + 500: 0.6 s … 2.9 s ahead, so Retry-After 1, 2 or 3 (u = 0).
    assert.deepEqual([...new Set(errors)].sort(), [1, 2, 3]);
  });
});

describe("Retry-After jitter", () => {
  it("is ceil(wait) or ceil(wait) + 1 seconds, never below 1", () => {
    for (const wait of [0, 1, 250, 999, 1000, 1001, 4_321, 60_000]) {
      const low = retryAfterSeconds(wait, () => 0);
      const high = retryAfterSeconds(wait, () => 0.999_999_9);
      assert.equal(low, Math.max(1, Math.ceil(wait / 1000)));
      assert.ok(high === low || high === low + 1, `${wait}: ${low}..${high}`);
      for (let i = 0; i < 50; i++) {
        const r = retryAfterSeconds(wait);
        assert.ok(r >= low && r <= Math.max(low, Math.ceil(wait / 1000) + 1), `${wait}: ${r}`);
      }
    }
  });

  it("spreads callers with the same wait over two values (not a fixed answer)", () => {
    const seen = new Set(Array.from({ length: 200 }, () => retryAfterSeconds(2_500)));
    assert.deepEqual([...seen].sort(), [3, 4]);
  });
});

describe("quota profile", () => {
  it("AWS defaults: 10 provisionings/s (UpdateCertificate, DescribeCertificate and RegisterThing bind), one shard", () => {
    const rate = provisioningRate({ ...AWS_DEFAULT_IOT_TPS });
    assert.equal(rate, 10);
    assert.equal(budgetShards(rate), 1);
  });

  it("raised quotas size the budget; bad values name the operation", () => {
    const quotas = parseQuotaProfile(
      '{"RegisterThing":100,"UpdateCertificate":100,"DescribeCertificate":100,"CreateCertificateFromCsr":150}',
    );
    assert.equal(provisioningRate(quotas), 100);
    assert.throws(() => parseQuotaProfile('{"UpdateCertificat":5}'), /unknown operation UpdateCertificat/);
    assert.throws(() => parseQuotaProfile('{"RegisterThing":-1}'), /iotQuotas.RegisterThing/);
    assert.throws(() => parseQuotaProfile("fast"), /aws-default/);
  });
});
