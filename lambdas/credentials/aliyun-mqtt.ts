/**
 * Alibaba Cloud IoT MQTT connect, one secret per device:
 * clientId `{clientId}|securemode={2|3},signmethod={hmacsha1|hmacsha256|hmacmd5},timestamp={ms}|`,
 * username `{deviceName}&{productKey}`, password = hex HMAC(deviceSecret, sorted name+value of
 * clientId, deviceName, productKey, timestamp — those present).
 *
 * Hex case: the C SDK writes uppercase and the platform accepts either, so builders write uppercase
 * by default (`hexCase: "lower"` for the Node samples' style) and verification ignores case.
 */
import {
  ALIYUN_HMAC_ALGORITHM,
  ALIYUN_SIGN_METHODS,
  type AliyunSignMethod,
  aliyunSigningOptions,
} from "./aliyun-sign-method.ts";
import { formatClientId, type ParsedClientId } from "./client-id.ts";
import { optionalTimestamp, requireParam, signMethodParam } from "./connect-params.ts";
import { CredentialError } from "./errors.ts";
import { checkOneOf, checkSecret } from "./field-checks.ts";
import type { MqttCredentials } from "./mqtt-credentials.ts";
import { checkHexPassword } from "./password.ts";
import { DIGEST_HEX_LENGTH, type HexCase, hexEqual, hmacHex, sortedSignContent } from "./sign.ts";
import { checkTimestampWindow, type TimestampOptions, timestampArgument } from "./timestamp.ts";
import { formatUsername, type ParsedUsername } from "./username.ts";

/** 2: MQTT over TLS. 3: plain TCP. */
export type AliyunSecureMode = 2 | 3;

/** Inputs of `buildAliyunMqttCredentials`. */
export interface AliyunMqttInput {
  productKey: string;
  deviceName: string;
  deviceSecret: string;
  /** The id before the `|` block; defaults to `{productKey}.{deviceName}`. */
  clientId?: string;
  /** Default 2 (TLS). */
  secureMode?: AliyunSecureMode;
  /** Default `hmacsha256`. */
  signMethod?: AliyunSignMethod;
  /** Epoch milliseconds (pass `Date.now()`); left out of clientId and sign content when absent. */
  timestamp?: number;
  /** Hex case of the password; default `upper` like the C SDK. */
  hexCase?: HexCase;
}

/** A parsed Alibaba one-secret-per-device MQTT CONNECT. */
export interface AliyunSignRequest {
  scheme: "aliyun-sign";
  /** The id before the `|` block (signed). */
  clientId: string;
  deviceName: string;
  productKey: string;
  secureMode: AliyunSecureMode;
  signMethod: AliyunSignMethod;
  /** Decimal epoch milliseconds as sent (signed), if present. */
  timestamp: string | undefined;
  password: string;
  /** Every clientId parameter as sent. */
  params: Readonly<Record<string, string>>;
}

interface SignedParts {
  clientId: string;
  deviceName: string;
  productKey: string;
  timestamp: string | undefined;
}

/**
 * The Alibaba MQTT password: hex HMAC(deviceSecret, `clientId{id}deviceName{dn}productKey{pk}`
 * `timestamp{ms}`), parts left out when undefined. Lowercase unless `hexCase` is `upper`.
 */
export function aliyunMqttPassword(
  parts: SignedParts,
  deviceSecret: string,
  signMethod: AliyunSignMethod,
  hexCase: HexCase = "lower",
): string {
  const { clientId, deviceName, productKey, timestamp } = parts;
  const content = sortedSignContent({ clientId, deviceName, productKey, timestamp });
  return hmacHex(
    ALIYUN_HMAC_ALGORITHM[signMethod],
    checkSecret(deviceSecret, "deviceSecret"),
    content,
    hexCase,
  );
}

/** Builds the clientId, username and password an Alibaba device sends in its MQTT CONNECT. */
export function buildAliyunMqttCredentials(input: AliyunMqttInput): MqttCredentials {
  const secureMode = checkOneOf(input.secureMode ?? 2, [2, 3] as const, "secureMode", "INVALID_INPUT");
  const { signMethod, hexCase } = aliyunSigningOptions(input);
  const timestamp = input.timestamp === undefined ? undefined : timestampArgument(input.timestamp);
  const username = formatUsername(input.deviceName, input.productKey, "deviceName", "productKey");
  const id = input.clientId ?? `${input.productKey}.${input.deviceName}`;
  const clientId = formatClientId(id, [
    ["securemode", String(secureMode)],
    ["signmethod", signMethod],
    ["timestamp", timestamp],
  ]);
  const parts = { clientId: id, deviceName: input.deviceName, productKey: input.productKey, timestamp };
  return { clientId, username, password: aliyunMqttPassword(parts, input.deviceSecret, signMethod, hexCase) };
}

/** Reads an Alibaba sign request from the parsed CONNECT fields (used by `parseMqttConnect`). */
export function aliyunSignRequestFrom(
  clientId: ParsedClientId,
  username: ParsedUsername,
  password: string,
): AliyunSignRequest {
  const signMethod = signMethodParam(requireParam(clientId, "signmethod"), ALIYUN_SIGN_METHODS);
  const mode = requireParam(clientId, "securemode");
  if (mode !== "2" && mode !== "3") {
    throw new CredentialError("UNSUPPORTED_SECURE_MODE", "securemode", "securemode must be 2 or 3");
  }
  return {
    scheme: "aliyun-sign",
    clientId: clientId.id,
    deviceName: username.first,
    productKey: username.second,
    secureMode: mode === "2" ? 2 : 3,
    signMethod,
    timestamp: optionalTimestamp(clientId),
    password: checkHexPassword(password, DIGEST_HEX_LENGTH[ALIYUN_HMAC_ALGORITHM[signMethod]]),
    params: clientId.params,
  };
}

/**
 * Verifies an Alibaba sign request against the device secret: constant-time, either hex case,
 * then the timestamp window. Throws `BAD_SIGNATURE` (field `password`), `STALE_TIMESTAMP` or
 * `MISSING_PARAMETER` (field `timestamp`).
 */
export function verifyAliyunMqttSign(
  request: AliyunSignRequest,
  deviceSecret: string,
  options?: TimestampOptions,
): void {
  const expected = aliyunMqttPassword(request, deviceSecret, request.signMethod);
  if (!hexEqual(expected, request.password)) {
    throw new CredentialError("BAD_SIGNATURE", "password", "password does not match");
  }
  checkTimestampWindow(request.timestamp, options);
}
