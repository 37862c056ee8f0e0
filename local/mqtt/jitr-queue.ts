import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DynamoDbJitrLedger } from "#adapters/dynamodb-jitr-ledger.ts";
import type { ProvisioningBudget } from "#core/admission/ports.ts";
import {
  JITR_QUEUE,
  jitrConsumers,
  jitrRegistrationsPerSecond,
  makePacer,
  unpaced,
} from "#core/jitr/budget.ts";
import { type BatchConfig, defaultBatchConfig } from "#core/jitr/process-registration-batch.ts";
import type { JitrDeps } from "#core/jitr/register-device-certificate.ts";
import { makeJitrBatchProcessor } from "#handlers/jitr-registration.ts";
import type { AwsQuotaProfile } from "../iot/quotas.ts";
import type { LocalQueue } from "./local-queue.ts";
import type { QueuedTarget } from "./rule-engine.ts";

/**
 * Retry delays of the local stack: the consumer's backoff shape, four times shorter than on AWS
 * (0.5 s base, 15 s cap), so a failing message reaches the dead letters in seconds, not minutes.
 */
export const localJitrBatchConfig: BatchConfig = {
  ...defaultBatchConfig,
  baseRetryDelaySeconds: 0.5,
  maxRetryDelaySeconds: 15,
};

/**
 * Receives before the local dead letters: three (AWS: JITR_QUEUE.maxReceiveCount, five), as many
 * deliveries as the local rule engine made before the queue (one and two retries), so a failing
 * registration is dead-lettered in seconds when the local client's own SDK retries come on top.
 */
export const LOCAL_MAX_RECEIVE_COUNT = 3;

export type LocalJitrQueueOptions = {
  jitr: JitrDeps;
  documentClient: DynamoDBDocumentClient;
  tableName: string;
  /** `default`: the consumers pace themselves at AWS's default JITR budget (10 registrations/s). */
  awsQuotas: AwsQuotaProfile;
  /** The account's provisioning budget shared with vending (`--aws-quotas default`); none: not shared. */
  budget?: ProvisioningBudget;
  /** The queue the rule engine made for this target (for ChangeMessageVisibility). */
  queue: () => LocalQueue | undefined;
  batchConfig?: BatchConfig;
};

/**
 * JITR as deployed (rule → SQS → Lambda event source), in process: the rule engine's queue with
 * the CDK stack's batch size and visibility timeout (JITR_QUEUE), a redrive after
 * {@link LOCAL_MAX_RECEIVE_COUNT} receives, at most
 * `jitrConsumers(budget)` batches at once, consumed by the same batch processor as the Lambda
 * (ledger in the local table, retries through the queue's ChangeMessageVisibility). With
 * `--aws-quotas default` the consumers share one pacer at the budget, as the deployed consumers
 * together do (each at its share).
 */
export function localJitrQueue(options: LocalJitrQueueOptions): QueuedTarget {
  const budget = jitrRegistrationsPerSecond();
  const process = makeJitrBatchProcessor({
    ...options.jitr,
    ledger: new DynamoDbJitrLedger(options.documentClient, options.tableName),
    queue: {
      retryLater: async (receiptHandle, delaySeconds) =>
        options.queue()?.retryLater(receiptHandle, delaySeconds),
    },
    pacer: options.awsQuotas === "default" ? makePacer(budget) : unpaced,
    ...(options.budget ? { budget: options.budget } : {}),
    // A lease as long as a claim: the local stack has no function timeout, and a crashed stack's
    // leases (their messages died with it) then free up when its claims do.
    batchConfig: options.batchConfig ?? {
      ...localJitrBatchConfig,
      ...(options.jitr.config ? { leaseMs: options.jitr.config.claimTtlMs } : {}),
    },
  });
  return {
    queue: {
      batchSize: JITR_QUEUE.batchSize,
      maxConcurrency: jitrConsumers(budget),
      visibilityTimeoutMs: JITR_QUEUE.visibilityTimeoutSeconds * 1000,
      maxReceiveCount: LOCAL_MAX_RECEIVE_COUNT,
    },
    consume: async (batch) => {
      const report = await process(batch);
      const outcomes = new Map<string, { delivered: boolean; result?: unknown; error?: string }>();
      for (const [messageId, outcome] of report.outcomes) {
        if (outcome.status === "done") outcomes.set(messageId, { delivered: true, result: outcome.result });
        else if (outcome.status === "duplicate") {
          outcomes.set(messageId, { delivered: true, result: { outcome: "duplicate" } });
        } else outcomes.set(messageId, { delivered: false, error: outcome.error });
      }
      return { batchItemFailures: report.batchItemFailures, outcomes };
    },
  };
}
