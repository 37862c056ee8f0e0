/**
 * iot-onramp/credentials: build what a device sends and parse + verify it on the server, for EnOS
 * DTLS-PSK and MQTT sign, Alibaba MQTT sign and dynamic registration, and derived device secrets.
 * Pure functions over node:crypto; no AWS SDK, no imports from outside this folder.
 */

export {
  type AliyunMqttInput,
  type AliyunSecureMode,
  type AliyunSignRequest,
  aliyunMqttPassword,
  buildAliyunMqttCredentials,
  verifyAliyunMqttSign,
} from "./aliyun-mqtt.ts";
export {
  type AliyunConnwlInput,
  type AliyunConnwlRequest,
  type AliyunRegisterAuthType,
  type AliyunRegisterInput,
  type AliyunRegisterRequest,
  type AliyunRegisterSecureMode,
  aliyunRegisterSign,
  buildAliyunConnwlCredentials,
  buildAliyunRegisterCredentials,
  verifyAliyunConnwl,
  verifyAliyunRegister,
} from "./aliyun-register.ts";
export {
  ALIYUN_REGISTER_PATH,
  type AliyunRegisterForm,
  type AliyunRegisterFormInput,
  type AliyunRegisterFormRequest,
  buildAliyunRegisterForm,
  FORM_CONTENT_TYPE,
  parseAliyunRegisterForm,
  verifyAliyunRegisterForm,
} from "./aliyun-register-form.ts";
export { ALIYUN_SIGN_METHODS, type AliyunSignMethod } from "./aliyun-sign-method.ts";
export { formatClientId, type ParsedClientId, parseClientId } from "./client-id.ts";
export { DERIVED_SECRET_LENGTH, deriveDeviceSecret } from "./derived-secret.ts";
export {
  buildEnosMqttCredentials,
  ENOS_SIGN_METHODS,
  type EnosMqttInput,
  type EnosSecureMode,
  type EnosSignMethod,
  type EnosSignRequest,
  verifyEnosMqttSign,
} from "./enos-mqtt.ts";
export {
  buildEnosPsk,
  ENOS_PSK_KEY_LENGTH,
  ENOS_PSK_LIFETIME_MAX,
  ENOS_PSK_LIFETIME_MIN,
  type EnosPsk,
  type EnosPskIdentity,
  type EnosPskSecureMode,
  enosPskKey,
  formatEnosPskIdentity,
  parseEnosPskIdentity,
} from "./enos-psk.ts";
export { CredentialError, type CredentialErrorCode, type CredentialField } from "./errors.ts";
export {
  FLEET_SIGNATURE_ALGORITHM,
  type FleetSignedFields,
  fleetCanonicalContent,
  signFleetRequest,
  verifyFleetSignature,
} from "./fleet-signature.ts";
export {
  CONNECT_SCHEMES,
  type ConnectScheme,
  type MqttConnectInput,
  type MqttConnectRequest,
  type ParseMqttConnectOptions,
  parseMqttConnect,
  verifyMqttConnect,
} from "./mqtt-connect.ts";
export type { MqttCredentials } from "./mqtt-credentials.ts";
export { decodePassword, type PasswordEncoding } from "./password.ts";
export {
  canonicalString,
  constantTimeEqual,
  DIGEST_HEX_LENGTH,
  type HashAlgorithm,
  type HexCase,
  hashHex,
  hmacHex,
  signCanonical,
  sortedSignContent,
  verifyCanonical,
} from "./sign.ts";
export { DEFAULT_MAX_CLOCK_SKEW_MS, type TimestampOptions } from "./timestamp.ts";
export { formatUsername, type ParsedUsername, parseUsername } from "./username.ts";
export {
  signVendRequest,
  VEND_SIGNATURE_ALGORITHM,
  type VendSignedFields,
  vendCanonicalContent,
  verifyVendSignature,
} from "./vend-signature.ts";
