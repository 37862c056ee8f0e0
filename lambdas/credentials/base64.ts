import { CredentialError, type CredentialErrorCode } from "./errors.ts";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes standard, padded base64 strictly: Node's decoder silently skips invalid characters, so
 * the text is checked first. Throws `code` naming `field` for anything else (including empty text
 * unless `allowEmpty`).
 */
export function decodeBase64Strict(
  text: unknown,
  field: string,
  code: CredentialErrorCode,
  allowEmpty = false,
): Buffer {
  if (typeof text !== "string") throw new CredentialError(code, field, `${field} must be a string`);
  if (text.length === 0 && !allowEmpty) throw new CredentialError(code, field, `${field} is empty`);
  if (text.length > 4096 || !BASE64.test(text)) {
    throw new CredentialError(code, field, `${field} is not valid base64`);
  }
  const bytes = Buffer.from(text, "base64");
  // Non-canonical trailing bits ("QR==" vs "QQ==") would decode to the same bytes: reject them.
  if (bytes.toString("base64") !== text) {
    throw new CredentialError(code, field, `${field} is not canonical base64`);
  }
  return bytes;
}
