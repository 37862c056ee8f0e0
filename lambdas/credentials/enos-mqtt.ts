/**
 * EnOS MQTT sign (secret-based devices):
 * clientId `{clientId}|securemode={2|3},signmethod={sha1|md5|sha256},timestamp={ms}|`,
 * username `{deviceKey}&{productKey}`, password = UPPERCASE hex of
 * hash(sorted name+value of clientId, deviceKey, productKey, timestamp, then the secret appended).
 * A plain hash, not an HMAC (EnOS SDK `SignUtil.sign`).
 */
import type { ParsedClientId } from "./client-id.ts";
import { formatClientId } from "./client-id.ts";
import { optionalTimestamp, requireParam, signMethodParam } from "./connect-params.ts";
import { CredentialError } from "./errors.ts";
import { checkOneOf, checkSecret } from "./field-checks.ts";
import type { MqttCredentials } from "./mqtt-credentials.ts";
import { checkHexPassword } from "./password.ts";
import { DIGEST_HEX_LENGTH, hashHex, hexEqual, sortedSignContent } from "./sign.ts";
import { checkTimestampWindow, type TimestampOptions, timestampArgument } from "./timestamp.ts";
import { formatUsername, type ParsedUsername } from "./username.ts";

/** EnOS sign methods (plain digests). */
export type EnosSignMethod = "sha1" | "md5" | "sha256";
export const ENOS_SIGN_METHODS: readonly EnosSignMethod[] = ["sha1", "md5", "sha256"];

/** 2: signed with the DeviceSecret. 3: with the ProductSecret (dynamic activation). */
export type EnosSecureMode = 2 | 3;

/** Inputs of `buildEnosMqttCredentials`. */
export interface EnosMqttInput {
  productKey: string;
  deviceKey: string;
  /** DeviceSecret (secure mode 2) or ProductSecret (secure mode 3). */
  secret: string;
  /** The id before the `|` block; defaults to the deviceKey. */
  clientId?: string;
  /** Default 2. */
  secureMode?: EnosSecureMode;
  /** Default `sha256` (the EnOS SDK default). */
  signMethod?: EnosSignMethod;
  /** Epoch milliseconds; pass `Date.now()`. */
  timestamp: number;
}

/** A parsed EnOS MQTT CONNECT. */
export interface EnosSignRequest {
  scheme: "enos-sign";
  /** The id before the `|` block (signed). */
  clientId: string;
  deviceKey: string;
  productKey: string;
  secureMode: EnosSecureMode;
  signMethod: EnosSignMethod;
  /** Decimal epoch milliseconds as sent (signed), if present. */
  timestamp: string | undefined;
  password: string;
  /** Every clientId parameter as sent. */
  params: Readonly<Record<string, string>>;
}

const signEnos = (
  parts: { clientId: string; deviceKey: string; productKey: string; timestamp: string | undefined },
  secret: string,
  method: EnosSignMethod,
): string => {
  const { clientId, deviceKey, productKey, timestamp } = parts;
  return hashHex(method, sortedSignContent({ clientId, deviceKey, productKey, timestamp }) + secret, "upper");
};

/** Builds the clientId, username and password an EnOS device sends in its MQTT CONNECT. */
export function buildEnosMqttCredentials(input: EnosMqttInput): MqttCredentials {
  const secret = checkSecret(input.secret);
  const secureMode = checkOneOf(input.secureMode ?? 2, [2, 3] as const, "secureMode", "INVALID_INPUT");
  const signMethod = checkOneOf(
    input.signMethod ?? "sha256",
    ENOS_SIGN_METHODS,
    "signMethod",
    "INVALID_INPUT",
  );
  const timestamp = timestampArgument(input.timestamp);
  const id = input.clientId ?? input.deviceKey;
  const username = formatUsername(input.deviceKey, input.productKey, "deviceKey", "productKey");
  const clientId = formatClientId(id, [
    ["securemode", String(secureMode)],
    ["signmethod", signMethod],
    ["timestamp", timestamp],
  ]);
  const parts = { clientId: id, deviceKey: input.deviceKey, productKey: input.productKey, timestamp };
  return { clientId, username, password: signEnos(parts, secret, signMethod) };
}

/** Reads an EnOS sign request from the parsed CONNECT fields (used by `parseMqttConnect`). */
export function enosSignRequestFrom(
  clientId: ParsedClientId,
  username: ParsedUsername,
  password: string,
): EnosSignRequest {
  const signMethod = signMethodParam(requireParam(clientId, "signmethod"), ENOS_SIGN_METHODS);
  const mode = requireParam(clientId, "securemode");
  if (mode !== "2" && mode !== "3") {
    throw new CredentialError("UNSUPPORTED_SECURE_MODE", "securemode", "securemode must be 2 or 3");
  }
  return {
    scheme: "enos-sign",
    clientId: clientId.id,
    deviceKey: username.first,
    productKey: username.second,
    secureMode: mode === "2" ? 2 : 3,
    signMethod,
    timestamp: optionalTimestamp(clientId),
    password: checkHexPassword(password, DIGEST_HEX_LENGTH[signMethod]),
    params: clientId.params,
  };
}

/**
 * Verifies an EnOS sign request against `secret` (DeviceSecret for secure mode 2, ProductSecret for
 * 3): constant-time, either hex case, then the timestamp window. Throws `BAD_SIGNATURE` (field
 * `password`), `STALE_TIMESTAMP` or `MISSING_PARAMETER` (field `timestamp`).
 */
export function verifyEnosMqttSign(
  request: EnosSignRequest,
  secret: string,
  options?: TimestampOptions,
): void {
  const expected = signEnos(request, checkSecret(secret), request.signMethod);
  if (!hexEqual(expected, request.password)) {
    throw new CredentialError("BAD_SIGNATURE", "password", "password does not match");
  }
  checkTimestampWindow(request.timestamp, options);
}
