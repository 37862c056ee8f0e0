import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDbJitrLedger } from "#adapters/dynamodb-jitr-ledger.ts";
import { SqsRegistrationQueue } from "#adapters/sqs-registration-queue.ts";
import { makePacer, type Pacer } from "#core/jitr/budget.ts";
import { defaultJitrConfig } from "#core/jitr/register-device-certificate.ts";
import { METRIC_SERVICES } from "#core/metrics.ts";
import { makeJitrQueueHandler } from "#handlers/jitr-registration.ts";
import {
  lambdaDocumentClient,
  lambdaLogger,
  lambdaMetrics,
  lambdaServices,
  lazyProvisioningBudget,
  requireEnv,
  withPowertools,
} from "./lambda-wiring.ts";

const services = lambdaServices();
const logger = lambdaLogger(METRIC_SERVICES.jitr);
const metrics = lambdaMetrics(METRIC_SERVICES.jitr);
const tableName = requireEnv("REGISTRY_TABLE_NAME");
const queueUrl = requireEnv("JITR_QUEUE_URL");
const rateSetting = requireEnv("JITR_REGISTRATIONS_PER_SECOND");

/**
 * This instance's share of the JITR budget (registrations per second: the account's budget over
 * the event source's maximum concurrency, set by lib/constructs/jitr.ts). Built at the first
 * registration, so a bad value fails that invocation with the setting's name (its message then
 * returns to the queue) rather than the module load.
 */
let pacer: Pacer | undefined;
const pacedByInstance: Pacer = {
  take() {
    if (!pacer) {
      const rate = Number(rateSetting);
      if (!(rate > 0)) throw new RangeError("JITR_REGISTRATIONS_PER_SECOND must be a number above 0.");
      pacer = makePacer(rate);
    }
    return pacer.take();
  },
};

/**
 * Lambda entry of just-in-time registration: the consumer of the JITR queue (SQS event source with
 * ReportBatchItemFailures and a maximum concurrency), which the topic rule on
 * `$aws/events/certificates/registered/+` (`SELECT * FROM ...`, sqs action) fills.
 */
export const handler = withPowertools(
  makeJitrQueueHandler({
    registry: services.registry,
    templates: services.templates,
    iot: services.iot,
    config: defaultJitrConfig,
    ledger: new DynamoDbJitrLedger(lambdaDocumentClient(), tableName),
    queue: new SqsRegistrationQueue(new SQSClient({}), queueUrl),
    pacer: pacedByInstance,
    // The account's provisioning budget, shared with vending (PROVISIONING_RATE / _SHARDS), built at
    // the first registration like the pacer: a bad value fails that invocation, not the module load.
    budget: lazyProvisioningBudget(),
    logger,
    metrics,
  }),
  logger,
  metrics,
);
