/**
 * Server side of the MQTT CONNECT schemes: read clientId / username / password (as a custom
 * authorizer receives them) into a typed request, then verify it with the secret the caller looked
 * up for that request's productKey and device.
 */
import { type AliyunSignRequest, aliyunSignRequestFrom, verifyAliyunMqttSign } from "./aliyun-mqtt.ts";
import {
  type AliyunConnwlRequest,
  type AliyunRegisterRequest,
  aliyunConnwlRequestFrom,
  aliyunRegisterRequestFrom,
  verifyAliyunConnwl,
  verifyAliyunRegister,
} from "./aliyun-register.ts";
import { ALIYUN_SIGN_METHODS } from "./aliyun-sign-method.ts";
import { parseClientId } from "./client-id.ts";
import { requireParam } from "./connect-params.ts";
import {
  ENOS_SIGN_METHODS,
  type EnosSignRequest,
  enosSignRequestFrom,
  verifyEnosMqttSign,
} from "./enos-mqtt.ts";
import { CredentialError } from "./errors.ts";
import { decodePassword, type PasswordEncoding } from "./password.ts";
import type { TimestampOptions } from "./timestamp.ts";
import { parseUsername } from "./username.ts";

/** Which credential scheme a CONNECT uses. */
export type ConnectScheme = MqttConnectRequest["scheme"];
export const CONNECT_SCHEMES: readonly ConnectScheme[] = [
  "aliyun-sign",
  "aliyun-register",
  "aliyun-regnwl",
  "aliyun-connwl",
  "enos-sign",
];

/** A parsed CONNECT, discriminated by `scheme`. */
export type MqttConnectRequest =
  | AliyunSignRequest
  | AliyunRegisterRequest
  | AliyunConnwlRequest
  | EnosSignRequest;

/** The CONNECT fields as received (values may be missing in an authorizer event). */
export interface MqttConnectInput {
  clientId: string | undefined;
  username: string | undefined;
  password: string | undefined;
}

/** Options of `parseMqttConnect`. */
export interface ParseMqttConnectOptions {
  /** `base64` for AWS IoT custom authorizer events, `raw` (default) for the password as sent. */
  passwordEncoding?: PasswordEncoding;
  /** Accept only these schemes (default: all); others fail with `SCHEME_NOT_ALLOWED`. */
  schemes?: readonly ConnectScheme[];
}

/**
 * Parses an MQTT CONNECT into a typed request. The scheme comes from the clientId block: `authType`
 * (`register`, `regnwl`, `connwl`) selects Alibaba dynamic registration; otherwise `signmethod`
 * selects Alibaba (`hmac*`) or EnOS (`sha1`, `md5`, `sha256`). A `?...` suffix on the username is
 * stripped. Only ever throws `CredentialError`, whose `field` names the wrong input.
 */
export function parseMqttConnect(
  input: MqttConnectInput,
  options: ParseMqttConnectOptions = {},
): MqttConnectRequest {
  const fields: Partial<MqttConnectInput> = typeof input === "object" && input !== null ? input : {};
  const clientId = parseClientId(fields.clientId);
  if (!clientId.hasBlock) {
    throw new CredentialError("MALFORMED_CLIENT_ID", "clientId", "clientId has no |k=v,...| parameter block");
  }
  const username = parseUsername(fields.username);
  const password = decodePassword(fields.password, options.passwordEncoding ?? "raw");
  const request = requestFrom(clientId, username, password);
  if (options.schemes && !options.schemes.includes(request.scheme)) {
    throw new CredentialError("SCHEME_NOT_ALLOWED", "clientId", `scheme ${request.scheme} is not accepted`);
  }
  return request;
}

const requestFrom = (
  clientId: ReturnType<typeof parseClientId>,
  username: ReturnType<typeof parseUsername>,
  password: string,
): MqttConnectRequest => {
  const authType = clientId.params.authType;
  if (authType !== undefined) {
    if (authType === "register" || authType === "regnwl") {
      return aliyunRegisterRequestFrom(authType, clientId, username, password);
    }
    if (authType === "connwl") return aliyunConnwlRequestFrom(clientId, username, password);
    throw new CredentialError(
      "UNSUPPORTED_AUTH_TYPE",
      "authType",
      "authType must be one of register, regnwl, connwl",
    );
  }
  const method = requireParam(clientId, "signmethod").toLowerCase();
  if ((ALIYUN_SIGN_METHODS as readonly string[]).includes(method)) {
    return aliyunSignRequestFrom(clientId, username, password);
  }
  if ((ENOS_SIGN_METHODS as readonly string[]).includes(method)) {
    return enosSignRequestFrom(clientId, username, password);
  }
  throw new CredentialError(
    "UNSUPPORTED_SIGN_METHOD",
    "signmethod",
    `signmethod must be one of ${[...ALIYUN_SIGN_METHODS, ...ENOS_SIGN_METHODS].join(", ")}`,
  );
};

/**
 * Verifies a parsed CONNECT against `secret`: the device secret (`aliyun-sign`, `enos-sign` with
 * secure mode 2), the product secret (`aliyun-register`, `aliyun-regnwl`, `enos-sign` with secure
 * mode 3) or the issued deviceToken (`aliyun-connwl`). Comparison is constant-time; timestamped
 * schemes are also checked against the window in `options`. Throws `CredentialError`
 * (`BAD_SIGNATURE`, `STALE_TIMESTAMP`, `MISSING_PARAMETER`); returns nothing on success.
 */
export function verifyMqttConnect(
  request: MqttConnectRequest,
  secret: string,
  options?: TimestampOptions,
): void {
  switch (request.scheme) {
    case "aliyun-sign":
      verifyAliyunMqttSign(request, secret, options);
      return;
    case "aliyun-register":
    case "aliyun-regnwl":
      verifyAliyunRegister(request, secret);
      return;
    case "aliyun-connwl":
      verifyAliyunConnwl(request, secret);
      return;
    case "enos-sign":
      verifyEnosMqttSign(request, secret, options);
      return;
    default:
      // Fail closed on a request that did not come from parseMqttConnect.
      throw new CredentialError("SCHEME_NOT_ALLOWED", "clientId", "unknown scheme");
  }
}
