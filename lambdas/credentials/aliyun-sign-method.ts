import { checkOneOf } from "./field-checks.ts";
import type { HashAlgorithm } from "./sign.ts";

/** Alibaba Cloud IoT HMAC sign methods as written on the wire. */
export type AliyunSignMethod = "hmacsha1" | "hmacsha256" | "hmacmd5";
export const ALIYUN_SIGN_METHODS: readonly AliyunSignMethod[] = ["hmacsha1", "hmacsha256", "hmacmd5"];

/** The digest behind each Alibaba sign method. */
export const ALIYUN_HMAC_ALGORITHM: Readonly<Record<AliyunSignMethod, HashAlgorithm>> = {
  hmacsha1: "sha1",
  hmacsha256: "sha256",
  hmacmd5: "md5",
};

/**
 * The signing options every Alibaba builder takes, checked, with the SDK's defaults: HMAC-SHA256,
 * uppercase hex (as the C SDK writes it).
 */
export function aliyunSigningOptions(input: { signMethod?: string; hexCase?: string }): {
  signMethod: AliyunSignMethod;
  hexCase: "upper" | "lower";
} {
  return {
    signMethod: checkOneOf(
      input.signMethod ?? "hmacsha256",
      ALIYUN_SIGN_METHODS,
      "signMethod",
      "INVALID_INPUT",
    ),
    hexCase: checkOneOf(input.hexCase ?? "upper", ["upper", "lower"] as const, "hexCase", "INVALID_INPUT"),
  };
}
