import { ChangeMessageVisibilityCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { RegistrationQueue } from "#core/jitr/ports.ts";
import { aws } from "./aws-errors.ts";

/**
 * The JITR work queue on SQS: a failed message's visibility timeout is set to the retry delay, so
 * it returns after a backoff instead of the queue's full visibility timeout
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html,
 * 0 to 43,200 s). The function's event source grants sqs:ChangeMessageVisibility on this queue.
 */
export class SqsRegistrationQueue implements RegistrationQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async retryLater(receiptHandle: string, delaySeconds: number): Promise<void> {
    // Whole seconds, at least 1: a zero timeout would hand the message straight back (a tight loop).
    const VisibilityTimeout = Math.min(43_200, Math.max(1, Math.ceil(delaySeconds)));
    await aws("ChangeMessageVisibility", () =>
      this.client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: this.queueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout,
        }),
      ),
    );
  }
}
