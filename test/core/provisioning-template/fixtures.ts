import assert from "node:assert/strict";
import { TemplateError } from "#core/provisioning-template/index.ts";

/** A valid certificate id (64 hex characters). */
export const CERT_ID = "0123456789abcdef".repeat(4);

/** A template with one thing named from `SerialNumber`, plus whatever `extra` adds or replaces. */
export function thingTemplate(properties: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    Parameters: { SerialNumber: { Type: "String" } },
    Resources: {
      thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { Ref: "SerialNumber" }, ...properties } },
    },
    ...extra,
  };
}

/** A template whose DeviceConfiguration holds `value`, to test an intrinsic on its own. */
export function valueTemplate(value: unknown, extra: Record<string, unknown> = {}) {
  return {
    Parameters: { SerialNumber: { Type: "String", Default: "SN-1" } },
    Resources: { policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "p" } } },
    DeviceConfiguration: { value },
    ...extra,
  };
}

/** Runs `fn`, requires it to throw a TemplateError, and returns that error. */
export function templateError(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof TemplateError, `expected a TemplateError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a TemplateError, but nothing was thrown");
}
