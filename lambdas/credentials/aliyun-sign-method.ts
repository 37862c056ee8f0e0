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
