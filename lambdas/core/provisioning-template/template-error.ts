import { ValidationError } from "#core/errors.ts";

/**
 * A provisioning template that cannot be evaluated: malformed JSON, an unknown resource type or
 * intrinsic function, a missing parameter, a value AWS IoT would reject. `path` names the failing
 * place in the template (`Resources.thing.Properties.ThingName`) or in the call
 * (`parameters.SerialNumber`, `certificate.id`); the message starts with it.
 */
export class TemplateError extends ValidationError {
  override readonly code = "INVALID_TEMPLATE";
  /** Where the template failed, e.g. `Resources.thing.Properties.ThingName`. */
  readonly path: string;

  constructor(path: string, detail: string, options?: { cause?: unknown }) {
    super(path ? `${path}: ${detail}` : detail, options);
    this.path = path;
  }
}
