import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MAX_TOPIC_BYTES, MAX_TOPIC_SLASHES, topicViolation } from "#local/mqtt/topic-limits.ts";

const levels = (count: number) => Array.from({ length: count }, (_, i) => `l${i}`).join("/");

describe("topic limits (AWS IoT Core message broker quotas)", () => {
  it("counts bytes of UTF-8, not characters", () => {
    assert.equal(MAX_TOPIC_BYTES, 256);
    assert.equal(topicViolation("a".repeat(256), "publish"), undefined);
    assert.equal(topicViolation("a".repeat(257), "publish"), "topic-too-long");
    assert.equal(topicViolation("é".repeat(128), "publish"), undefined, "128 characters, 256 bytes");
    assert.equal(topicViolation(`${"é".repeat(128)}x`, "publish"), "topic-too-long", "129 characters");
    assert.equal(topicViolation("😀".repeat(64), "subscribe"), undefined, "64 characters, 256 bytes");
    assert.equal(topicViolation("😀".repeat(65), "subscribe"), "topic-too-long");
    assert.equal(topicViolation("a".repeat(60 * 1024), "subscribe"), "topic-too-long");
  });

  it("allows 7 forward slashes, in topics and in filters", () => {
    assert.equal(MAX_TOPIC_SLASHES, 7);
    assert.equal(topicViolation(levels(8), "publish"), undefined);
    assert.equal(topicViolation(levels(9), "publish"), "too-many-slashes");
    assert.equal(topicViolation("a/+/c/d/e/f/g/#", "subscribe"), undefined);
    assert.equal(topicViolation("a/+/c/d/e/f/g/h/#", "subscribe"), "too-many-slashes");
    assert.equal(topicViolation("////////", "publish"), "too-many-slashes", "empty levels count too");
  });

  it("does not count the first three slashes of a Basic Ingest topic", () => {
    assert.equal(topicViolation(`$aws/rules/my_rule/${levels(8)}`, "publish"), undefined);
    assert.equal(topicViolation(`$aws/rules/my_rule/${levels(9)}`, "publish"), "too-many-slashes");
    assert.equal(topicViolation(`$aws/things/t/${levels(6)}`, "publish"), "too-many-slashes", "only rules");
  });

  it("accepts AWS's own reserved topics within the limits (shadows, jobs, fleet provisioning, events)", () => {
    for (const topic of [
      "$aws/things/SN-1/shadow/name/config/update/documents",
      "$aws/things/SN-1/jobs/job-1/update/accepted",
      "$aws/provisioning-templates/fleet-claim-device/provision/json/accepted",
      "$aws/events/certificates/registered/0123456789abcdef",
    ]) {
      assert.equal(topicViolation(topic, "publish"), undefined, topic);
      assert.equal(topicViolation(topic, "subscribe"), undefined, topic);
    }
    assert.equal(topicViolation("$aws/events/presence/connected/+", "subscribe"), undefined);
  });

  it("refuses $ namespaces other than $aws, and subscriptions to Basic Ingest topics", () => {
    for (const topic of ["$SYS/broker/clients", "$custom/x", "$", "$AWS/things/x/shadow/update"]) {
      assert.equal(topicViolation(topic, "publish"), "reserved-topic", topic);
      assert.equal(topicViolation(topic, "subscribe"), "reserved-topic", topic);
    }
    assert.equal(topicViolation("$aws/rules/my_rule/x", "publish"), undefined);
    assert.equal(topicViolation("$aws/rules/my_rule/#", "subscribe"), "reserved-topic");
    assert.equal(topicViolation("$aws/rules/#", "subscribe"), "reserved-topic");
    assert.equal(topicViolation("$aws/#", "subscribe"), undefined, "left to the policies");
    assert.equal(topicViolation("#", "subscribe"), undefined);
  });

  it("accepts every topic within both limits outside the $ namespace (property)", () => {
    const level = fc.string({ unit: "grapheme", maxLength: 20 }).filter((l) => !l.includes("/"));
    fc.assert(
      fc.property(fc.array(level, { minLength: 1, maxLength: 8 }), (parts) => {
        const topic = parts.join("/");
        fc.pre(!topic.startsWith("$") && Buffer.byteLength(topic) <= 256);
        return topicViolation(topic, "publish") === undefined;
      }),
    );
  });
});
