import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { registrationEventSchema } from "#core/jitr/registration-event.ts";

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/events/${name}.json`, import.meta.url), "utf8"));

describe("JITR registration event schema", () => {
  it("accepts the event AWS IoT publishes on $aws/events/certificates/registered/{caId}", () => {
    const parsed = registrationEventSchema.parse(fixture("jitr-certificate-registered"));
    assert.equal(parsed.certificateId, "0".repeat(64));
    assert.equal(parsed.caCertificateId, "1".repeat(64));
    assert.equal(parsed.timestamp, 1763841600000);
    assert.equal(parsed.certificateStatus, "PENDING_ACTIVATION");
    assert.equal(parsed.awsAccountId, "000000000000");
  });

  it("keeps unknown extra fields and accepts a null registration timestamp", () => {
    const parsed = registrationEventSchema.parse(fixture("jitr-certificate-registered-extra-fields"));
    assert.equal((parsed as Record<string, unknown>).clientId, "SN-0001");
    assert.equal(parsed.certificateRegistrationTimestamp, null);
  });

  it("rejects a malformed event and names the fields", () => {
    const result = registrationEventSchema.safeParse(fixture("jitr-malformed"));
    assert.equal(result.success, false);
    const paths = result.error!.issues.map((i) => i.path.join("."));
    assert.deepEqual(paths.sort(), ["awsAccountId", "certificateId", "timestamp"]);
  });

  it("rejects what is not an object, and upper-case or short ids", () => {
    for (const value of [null, "event", 42, [], {}]) {
      assert.equal(registrationEventSchema.safeParse(value).success, false, JSON.stringify(value));
    }
    const base = fixture("jitr-certificate-registered") as Record<string, unknown>;
    for (const certificateId of ["A".repeat(64), "0".repeat(63)]) {
      assert.equal(registrationEventSchema.safeParse({ ...base, certificateId }).success, false);
    }
  });
});
