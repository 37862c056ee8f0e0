/**
 * Alibaba Cloud IoT dynamic registration over MQTT, one secret per product (seed 002):
 * - `register` (device pre-registered; the platform answers `{deviceSecret}` on `/ext/register`) and
 *   `regnwl` (no pre-registration; `{productKey, deviceName, clientId, deviceToken}` on
 *   `/ext/regnwl`): clientId `{id}|securemode=2,authType={register|regnwl},random={r},signmethod={m}|`,
 *   username `{deviceName}&{productKey}`, password = hex HMAC(productSecret,
 *   `deviceName{dn}productKey{pk}random{r}`).
 * - `connwl`, the connection after `regnwl`: clientId `{clientId}|securemode=-2,authType=connwl|`,
 *   username `{deviceName}&{productKey}`, password = the deviceToken.
 *
 * Secure mode: seed 002 writes 2; new-version Alibaba instances write -2. Both are accepted and
 * `secureMode` chooses what builders write (default 2). The random carries no time, so a captured
 * register CONNECT can be replayed; callers that care keep used randoms for a while.
 */
import {
  ALIYUN_HMAC_ALGORITHM,
  ALIYUN_SIGN_METHODS,
  type AliyunSignMethod,
  aliyunSigningOptions,
} from "./aliyun-sign-method.ts";
import { formatClientId, type ParsedClientId } from "./client-id.ts";
import { requireParam, signMethodParam } from "./connect-params.ts";
import { CredentialError } from "./errors.ts";
import { checkOneOf, checkSecret, checkText } from "./field-checks.ts";
import type { MqttCredentials } from "./mqtt-credentials.ts";
import { checkHexPassword } from "./password.ts";
import {
  constantTimeEqual,
  DIGEST_HEX_LENGTH,
  type HexCase,
  hexEqual,
  hmacHex,
  sortedSignContent,
} from "./sign.ts";
import { formatUsername, type ParsedUsername } from "./username.ts";

/** The two MQTT registration flavours. */
export type AliyunRegisterAuthType = "register" | "regnwl";
/** 2 (seed 002, older instances) or -2 (new-version instances). */
export type AliyunRegisterSecureMode = 2 | -2;

/** Inputs of `buildAliyunRegisterCredentials`. */
export interface AliyunRegisterInput {
  authType: AliyunRegisterAuthType;
  productKey: string;
  deviceName: string;
  productSecret: string;
  /** A fresh random value per attempt (no `|`, `,`, `=`). */
  random: string;
  /** The id before the `|` block; defaults to `{productKey}.{deviceName}`. Not signed. */
  clientId?: string;
  /** Default 2. */
  secureMode?: AliyunRegisterSecureMode;
  /** Default `hmacsha256`. */
  signMethod?: AliyunSignMethod;
  /** Hex case of the password; default `upper` like the C SDK (seed 002 shows lowercase). */
  hexCase?: HexCase;
}

/** A parsed `register` or `regnwl` CONNECT. */
export interface AliyunRegisterRequest {
  scheme: "aliyun-register" | "aliyun-regnwl";
  /** The id before the `|` block (not signed). */
  clientId: string;
  deviceName: string;
  productKey: string;
  secureMode: AliyunRegisterSecureMode;
  signMethod: AliyunSignMethod;
  /** The random value as sent (signed). */
  random: string;
  password: string;
  params: Readonly<Record<string, string>>;
}

/** Inputs of `buildAliyunConnwlCredentials`: what `/ext/regnwl` returned. */
export interface AliyunConnwlInput {
  clientId: string;
  deviceName: string;
  productKey: string;
  deviceToken: string;
}

/** A parsed `connwl` CONNECT; `password` is the deviceToken. */
export interface AliyunConnwlRequest {
  scheme: "aliyun-connwl";
  clientId: string;
  deviceName: string;
  productKey: string;
  password: string;
  params: Readonly<Record<string, string>>;
}

/**
 * The registration signature: hex HMAC(productSecret, `deviceName{dn}productKey{pk}random{r}`),
 * lowercase unless `hexCase` is `upper`. Shared by the MQTT and HTTPS registration.
 */
export function aliyunRegisterSign(
  parts: { deviceName: string; productKey: string; random: string },
  productSecret: string,
  signMethod: AliyunSignMethod,
  hexCase: HexCase = "lower",
): string {
  const { deviceName, productKey, random } = parts;
  const content = sortedSignContent({ deviceName, productKey, random });
  return hmacHex(
    ALIYUN_HMAC_ALGORITHM[signMethod],
    checkSecret(productSecret, "productSecret"),
    content,
    hexCase,
  );
}

/** Builds the `register` / `regnwl` CONNECT fields a device sends to get its secret or token. */
export function buildAliyunRegisterCredentials(input: AliyunRegisterInput): MqttCredentials {
  const authType = checkOneOf(input.authType, ["register", "regnwl"] as const, "authType", "INVALID_INPUT");
  const secureMode = checkOneOf(input.secureMode ?? 2, [2, -2] as const, "secureMode", "INVALID_INPUT");
  const { signMethod, hexCase } = aliyunSigningOptions(input);
  const username = formatUsername(input.deviceName, input.productKey, "deviceName", "productKey");
  const clientId = formatClientId(input.clientId ?? `${input.productKey}.${input.deviceName}`, [
    ["securemode", String(secureMode)],
    ["authType", authType],
    ["random", input.random],
    ["signmethod", signMethod],
  ]);
  return {
    clientId,
    username,
    password: aliyunRegisterSign(input, input.productSecret, signMethod, hexCase),
  };
}

/** Builds the `connwl` CONNECT fields from the clientId and deviceToken `/ext/regnwl` returned. */
export function buildAliyunConnwlCredentials(input: AliyunConnwlInput): MqttCredentials {
  const username = formatUsername(input.deviceName, input.productKey, "deviceName", "productKey");
  const clientId = formatClientId(input.clientId, [
    ["securemode", "-2"],
    ["authType", "connwl"],
  ]);
  return { clientId, username, password: checkText(input.deviceToken, "deviceToken") };
}

/** Reads a `register` / `regnwl` request from parsed CONNECT fields (used by `parseMqttConnect`). */
export function aliyunRegisterRequestFrom(
  authType: AliyunRegisterAuthType,
  clientId: ParsedClientId,
  username: ParsedUsername,
  password: string,
): AliyunRegisterRequest {
  const signMethod = signMethodParam(requireParam(clientId, "signmethod"), ALIYUN_SIGN_METHODS);
  const mode = requireParam(clientId, "securemode");
  if (mode !== "2" && mode !== "-2") {
    throw new CredentialError("UNSUPPORTED_SECURE_MODE", "securemode", "securemode must be 2 or -2");
  }
  return {
    scheme: authType === "register" ? "aliyun-register" : "aliyun-regnwl",
    clientId: clientId.id,
    deviceName: username.first,
    productKey: username.second,
    secureMode: mode === "2" ? 2 : -2,
    signMethod,
    random: requireParam(clientId, "random"),
    password: checkHexPassword(password, DIGEST_HEX_LENGTH[ALIYUN_HMAC_ALGORITHM[signMethod]]),
    params: clientId.params,
  };
}

/** Reads a `connwl` request from parsed CONNECT fields (used by `parseMqttConnect`). */
export function aliyunConnwlRequestFrom(
  clientId: ParsedClientId,
  username: ParsedUsername,
  password: string,
): AliyunConnwlRequest {
  if (requireParam(clientId, "securemode") !== "-2") {
    throw new CredentialError("UNSUPPORTED_SECURE_MODE", "securemode", "connwl requires securemode -2");
  }
  return {
    scheme: "aliyun-connwl",
    clientId: clientId.id,
    deviceName: username.first,
    productKey: username.second,
    password,
    params: clientId.params,
  };
}

/**
 * Verifies a `register` / `regnwl` request against the product secret (constant-time, either hex
 * case). Throws `BAD_SIGNATURE` (field `password`).
 */
export function verifyAliyunRegister(request: AliyunRegisterRequest, productSecret: string): void {
  const expected = aliyunRegisterSign(request, productSecret, request.signMethod);
  if (!hexEqual(expected, request.password)) {
    throw new CredentialError("BAD_SIGNATURE", "password", "password does not match");
  }
}

/**
 * Verifies a `connwl` request against the deviceToken issued at `regnwl` (constant-time, exact).
 * Throws `BAD_SIGNATURE` (field `password`).
 */
export function verifyAliyunConnwl(request: AliyunConnwlRequest, deviceToken: string): void {
  if (!constantTimeEqual(checkSecret(deviceToken, "deviceToken"), request.password)) {
    throw new CredentialError("BAD_SIGNATURE", "password", "password does not match");
  }
}
