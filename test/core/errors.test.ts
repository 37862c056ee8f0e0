import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AuthenticationError,
  DependencyThrottledError,
  DeviceNotAllowedError,
  DomainError,
} from "#core/errors.ts";

describe("domain errors", () => {
  it("carry kind, code and their class name", () => {
    const error = new AuthenticationError("NONCE_REUSED", "nonce already used");
    assert.ok(error instanceof DomainError);
    assert.equal(error.kind, "unauthenticated");
    assert.equal(error.code, "NONCE_REUSED");
    assert.equal(error.name, "AuthenticationError");
  });

  it("give unknown, disabled and revoked devices the same message", () => {
    const messages = new Set(
      (["unknown", "disabled", "revoked"] as const).map((r) => new DeviceNotAllowedError(r).message),
    );
    assert.equal(messages.size, 1);
  });

  it("tell clients when to retry a throttled call", () => {
    assert.equal(new DependencyThrottledError("slow down", 3).retryAfterSeconds, 3);
  });
});
