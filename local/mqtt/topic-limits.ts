/**
 * AWS IoT Core's message broker limits on topic names and topic filters, and its reserved `$`
 * namespace, checked before any policy is evaluated.
 *
 * - Topic size: at most 256 bytes of UTF-8, and at most 7 forward slashes, in a topic a message
 *   is published to or a topic filter subscribed to; the first 3 slashes of a Basic Ingest topic
 *   (`$aws/rules/{ruleName}/`) do not count ("AWS IoT Core message broker and protocol limits and
 *   quotas", https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits;
 *   the AWS IoT Device SDK applies the same checks as `AwsIotCoreDefaults`:
 *   https://aws.github.io/aws-iot-device-sdk-js-v2/node/enums/mqtt5.ClientExtendedValidationAndFlowControl.html).
 * - Topics beginning with `$` are reserved for AWS IoT (https://docs.aws.amazon.com/iot/latest/developerguide/topics.html):
 *   only the listed `$aws/...` topics may be used, and "any attempts to publish or subscribe to
 *   topics beginning with $ [other than those] result in a terminated connection". Basic Ingest
 *   topics (`$aws/rules/...`) may only be published to: devices "can't subscribe to Basic Ingest
 *   reserved topics" (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html).
 *   The local endpoint refuses what is certainly outside the list (a `$` namespace other than
 *   `$aws`, a subscription to `$aws/rules/`) and leaves the rest of `$aws/` to the policies.
 *
 * A violation disconnects the client (AWS's `CLIENT_ERROR` disconnect reason: "the client did
 * something wrong", https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html).
 */

/** The largest topic or topic filter, in bytes of UTF-8. */
export const MAX_TOPIC_BYTES = 256;
/** The most forward slashes in a topic or topic filter (Basic Ingest's prefix not counted). */
export const MAX_TOPIC_SLASHES = 7;

/** Why a topic or topic filter is refused. */
export type TopicViolation = "topic-too-long" | "too-many-slashes" | "reserved-topic";

const BASIC_INGEST = /^\$aws\/rules\/[^/]+\//;

/**
 * What is wrong with a topic a client publishes to, or a topic filter it subscribes to, or
 * undefined when it is within AWS IoT Core's limits.
 */
export function topicViolation(topic: string, use: "publish" | "subscribe"): TopicViolation | undefined {
  if (Buffer.byteLength(topic, "utf8") > MAX_TOPIC_BYTES) return "topic-too-long";
  const basicIngest = BASIC_INGEST.test(topic);
  if (topic.startsWith("$")) {
    const end = topic.indexOf("/");
    if ((end < 0 ? topic : topic.slice(0, end)) !== "$aws") return "reserved-topic";
    if (use === "subscribe" && /^\$aws\/rules(\/|$)/.test(topic)) return "reserved-topic";
  }
  const slashes = countSlashes(topic) - (basicIngest ? 3 : 0);
  return slashes > MAX_TOPIC_SLASHES ? "too-many-slashes" : undefined;
}

function countSlashes(topic: string): number {
  let count = 0;
  for (let i = topic.indexOf("/"); i >= 0; i = topic.indexOf("/", i + 1)) count++;
  return count;
}
