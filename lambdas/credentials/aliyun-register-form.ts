/**
 * Alibaba Cloud IoT dynamic registration over HTTPS (pre-registered devices only):
 * `POST /auth/register/device`, form-urlencoded `productKey, deviceName, random, sign, signMethod`,
 * sign = hex HMAC(productSecret, `deviceName{dn}productKey{pk}random{r}`). The platform answers
 * `{code: 200, data: {productKey, deviceName, deviceSecret}, message}`.
 */
import { aliyunRegisterSign } from "./aliyun-register.ts";
import {
  ALIYUN_HMAC_ALGORITHM,
  ALIYUN_SIGN_METHODS,
  type AliyunSignMethod,
  aliyunSigningOptions,
} from "./aliyun-sign-method.ts";
import { CredentialError } from "./errors.ts";
import { checkText } from "./field-checks.ts";
import { DIGEST_HEX_LENGTH, type HexCase, hexEqual } from "./sign.ts";

/** The registration path on the Alibaba HTTPS endpoint. */
export const ALIYUN_REGISTER_PATH = "/auth/register/device";
export const FORM_CONTENT_TYPE = "application/x-www-form-urlencoded";

/** The five form fields. */
export interface AliyunRegisterForm {
  productKey: string;
  deviceName: string;
  random: string;
  sign: string;
  signMethod: AliyunSignMethod;
}

/** Inputs of `buildAliyunRegisterForm`. */
export interface AliyunRegisterFormInput {
  productKey: string;
  deviceName: string;
  productSecret: string;
  /** A fresh random value per attempt. */
  random: string;
  /** Default `hmacsha256`. */
  signMethod?: AliyunSignMethod;
  /** Hex case of `sign`; default `upper` (the platform accepts either). */
  hexCase?: HexCase;
}

/** A ready-to-send registration request. */
export interface AliyunRegisterFormRequest {
  method: "POST";
  path: typeof ALIYUN_REGISTER_PATH;
  contentType: typeof FORM_CONTENT_TYPE;
  /** The form-urlencoded body. */
  body: string;
  fields: AliyunRegisterForm;
}

const FIELDS = ["productKey", "deviceName", "random", "sign", "signMethod"] as const;

/** Builds the HTTPS registration request a pre-registered device sends to get its deviceSecret. */
export function buildAliyunRegisterForm(input: AliyunRegisterFormInput): AliyunRegisterFormRequest {
  const { signMethod, hexCase } = aliyunSigningOptions(input);
  const productKey = checkText(input.productKey, "productKey");
  const deviceName = checkText(input.deviceName, "deviceName");
  const random = checkText(input.random, "random");
  const sign = aliyunRegisterSign(
    { deviceName, productKey, random },
    input.productSecret,
    signMethod,
    hexCase,
  );
  const fields: AliyunRegisterForm = { productKey, deviceName, random, sign, signMethod };
  const body = new URLSearchParams(FIELDS.map((name): [string, string] => [name, fields[name]])).toString();
  return { method: "POST", path: ALIYUN_REGISTER_PATH, contentType: FORM_CONTENT_TYPE, body, fields };
}

/**
 * Parses a form-urlencoded registration body. Unknown fields are ignored. Throws `CredentialError`:
 * `MALFORMED_FORM`, `MISSING_PARAMETER` / `DUPLICATE_PARAMETER` / `EMPTY_VALUE` (field = the form
 * field), `UNSUPPORTED_SIGN_METHOD` (field `signMethod`).
 */
export function parseAliyunRegisterForm(body: unknown): AliyunRegisterForm {
  if (typeof body !== "string") throw new CredentialError("MALFORMED_FORM", "form", "form must be a string");
  if (body.length > 4096) throw new CredentialError("MALFORMED_FORM", "form", "form is too long");
  const found = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(body)) {
    if (!(FIELDS as readonly string[]).includes(name)) continue;
    if (found.has(name)) {
      throw new CredentialError("DUPLICATE_PARAMETER", name, `form field ${name} appears twice`);
    }
    found.set(name, checkText(value, name, { code: "MALFORMED_FORM" }));
  }
  const get = (name: (typeof FIELDS)[number]): string => {
    const value = found.get(name);
    if (value === undefined) {
      throw new CredentialError("MISSING_PARAMETER", name, `form field ${name} is required`);
    }
    return value;
  };
  const lowerMethod = get("signMethod").toLowerCase();
  const signMethod = ALIYUN_SIGN_METHODS.find((m) => m === lowerMethod);
  if (signMethod === undefined) {
    throw new CredentialError(
      "UNSUPPORTED_SIGN_METHOD",
      "signMethod",
      `signMethod must be one of ${ALIYUN_SIGN_METHODS.join(", ")}`,
    );
  }
  const sign = get("sign");
  const length = DIGEST_HEX_LENGTH[ALIYUN_HMAC_ALGORITHM[signMethod]];
  if (sign.length !== length || !/^[0-9A-Fa-f]+$/.test(sign)) {
    throw new CredentialError("MALFORMED_FORM", "sign", `sign must be ${length} hex characters`);
  }
  return {
    productKey: get("productKey"),
    deviceName: get("deviceName"),
    random: get("random"),
    sign,
    signMethod,
  };
}

/**
 * Verifies a parsed registration form against the product secret (constant-time, either hex case).
 * Throws `BAD_SIGNATURE` (field `sign`).
 */
export function verifyAliyunRegisterForm(form: AliyunRegisterForm, productSecret: string): void {
  const expected = aliyunRegisterSign(form, productSecret, form.signMethod);
  if (!hexEqual(expected, form.sign)) {
    throw new CredentialError("BAD_SIGNATURE", "sign", "sign does not match");
  }
}
