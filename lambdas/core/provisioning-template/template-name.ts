import { TemplateError } from "./template-error.ts";

/** AWS IoT rejects a template body longer than this (characters). */
export const MAX_TEMPLATE_BODY_LENGTH = 10_240;
/** AWS IoT rejects a provisioning template name longer than this. */
export const MAX_TEMPLATE_NAME_LENGTH = 36;
const TEMPLATE_NAME = /^[0-9A-Za-z_-]+$/;

/**
 * Checks a provisioning template name as CreateProvisioningTemplate does: `^[0-9A-Za-z_-]+$`,
 * 1 to 36 characters. Returns the name; throws {@link TemplateError} (path `templateName`).
 */
export function validateTemplateName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new TemplateError("templateName", "a template name must be a non-empty string");
  }
  if (name.length > MAX_TEMPLATE_NAME_LENGTH) {
    throw new TemplateError(
      "templateName",
      `"${name}" has ${name.length} characters; the limit is ${MAX_TEMPLATE_NAME_LENGTH}`,
    );
  }
  if (!TEMPLATE_NAME.test(name)) {
    throw new TemplateError(
      "templateName",
      `"${name}" may contain only letters, digits, "_" and "-" (^[0-9A-Za-z_-]+$)`,
    );
  }
  return name;
}
