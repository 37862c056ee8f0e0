import * as z from "zod/mini";
import { ConflictError } from "#core/errors.ts";
import {
  type BatchDeps,
  type BatchReport,
  processRegistrationBatch,
  type QueuedRegistration,
} from "#core/jitr/process-registration-batch.ts";
import {
  type JitrDeps,
  type JitrRejectionReason,
  registerDeviceCertificate,
} from "#core/jitr/register-device-certificate.ts";
import { registrationEventSchema } from "#core/jitr/registration-event.ts";
import { METRIC, noMetrics, timed } from "#core/metrics.ts";

/** What the JITR Lambda returns (visible in the rule's logs and in tests). */
export type JitrHandlerResult = {
  outcome: "activated" | "already-active" | "ignored" | "in-progress" | "rejected";
  reason?: JitrRejectionReason;
};

/**
 * The decision for one registration event (used per certificate by the queue consumer below):
 * the JITR use case with its metrics, invoked by a topic rule on `$aws/events/certificates/registered/+`. Parses the
 * event and calls the use case. A malformed event is logged (field names only) and answered as
 * rejected without throwing, since retrying it cannot help; a duplicate delivery while another one
 * provisions the device answers "in-progress"; a failure of a dependency is rethrown so that the
 * Lambda's retries and the rule's error action see it.
 */
export function makeJitrHandler(deps: JitrDeps) {
  const metrics = deps.metrics ?? noMetrics;
  const handle = makeJitrDecision(deps);
  return (event: unknown): Promise<JitrHandlerResult> =>
    timed(metrics, async () => {
      const result = await handle(event);
      if (result.outcome === "activated") metrics.count(METRIC.jitrActivations);
      else if (result.outcome === "rejected") {
        metrics.count(METRIC.jitrRefusals, { reason: result.reason ?? "unknown" });
      } else metrics.count(METRIC.jitrNoops, { outcome: result.outcome });
      return result;
    });
}

function makeJitrDecision(deps: JitrDeps) {
  return async (event: unknown): Promise<JitrHandlerResult> => {
    const parsed = registrationEventSchema.safeParse(event);
    if (!parsed.success) {
      deps.logger.warn("jitr: malformed registration event", {
        issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "event"}: ${i.message}`),
      });
      return { outcome: "rejected", reason: "malformed-event" };
    }
    try {
      const result = await registerDeviceCertificate(deps, parsed.data);
      return result.outcome === "rejected"
        ? { outcome: result.outcome, reason: result.reason }
        : { outcome: result.outcome };
    } catch (error) {
      if (error instanceof ConflictError && error.code === "PROVISIONING_IN_PROGRESS") {
        // A duplicate delivery while another one provisions this device: that one finishes the job
        // (and if it fails, its own retry or the device's next connect brings the event back).
        deps.logger.info("jitr: registration already in progress", {
          certificateId: parsed.data.certificateId,
        });
        return { outcome: "in-progress" };
      }
      deps.logger.error("jitr: registration failed; the event will be retried", {
        certificateId: parsed.data.certificateId,
        caCertificateId: parsed.data.caCertificateId,
        error: error instanceof Error ? error.name : "unknown",
      });
      throw error;
    }
  };
}

/** The SQS event the JITR function receives from its event source mapping (the fields it reads). */
const sqsEventSchema = z.object({
  Records: z.array(
    z.looseObject({
      messageId: z.string().check(z.minLength(1)),
      receiptHandle: z.string().check(z.minLength(1)),
      body: z.string(),
      attributes: z.looseObject({ ApproximateReceiveCount: z.optional(z.string()) }),
    }),
  ),
});

/** The partial batch response (the event source mapping has ReportBatchItemFailures). */
export type SqsBatchResponse = { batchItemFailures: { itemIdentifier: string }[] };

/**
 * The queue consumer with each message's outcome: {@link makeJitrQueueHandler} on Lambda, the local
 * stack's in-process queue directly (its rule engine records the outcomes).
 */
export function makeJitrBatchProcessor(deps: JitrDeps & Omit<BatchDeps, "logger" | "clock">) {
  const decide = makeJitrHandler(deps);
  return (messages: readonly QueuedRegistration[]): Promise<BatchReport> =>
    processRegistrationBatch(deps, messages, async (event) => decide(event));
}

/**
 * The JITR Lambda: the consumer of the queue the topic rule on
 * `$aws/events/certificates/registered/+` sends to. Answers the partial batch response: the
 * messages to retry (returned to the queue after a backoff); everything else is deleted. An event
 * that is not an SQS batch is an error of the wiring and throws (nothing is deleted).
 */
export function makeJitrQueueHandler(deps: JitrDeps & Omit<BatchDeps, "logger" | "clock">) {
  const process = makeJitrBatchProcessor(deps);
  return async (event: unknown): Promise<SqsBatchResponse> => {
    const parsed = sqsEventSchema.safeParse(event);
    if (!parsed.success) throw new TypeError("jitr: the event is not an SQS batch (Records[])");
    const messages = parsed.data.Records.map(
      (record): QueuedRegistration => ({
        messageId: record.messageId,
        receiptHandle: record.receiptHandle,
        body: record.body,
        receiveCount: Number(record.attributes.ApproximateReceiveCount ?? "1") || 1,
      }),
    );
    const { batchItemFailures } = await process(messages);
    return { batchItemFailures };
  };
}
