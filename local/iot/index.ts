/**
 * The local AWS IoT control-plane emulator: the REST API @aws-sdk/client-iot speaks, a persisted
 * registry, fault injection, and the in-process API the local MQTT endpoint uses for JITR/JITP.
 */
export { applyProvisioningPlan, type ProvisioningResult } from "./apply-provisioning-plan.ts";
export { certificateArn, certificateIdFromArn, thingArn } from "./arns.ts";
export { createIotEmulator, IOT_ROUTES, type IotEmulator, type IotEmulatorOptions } from "./emulator.ts";
export { ERROR_STATUS, IotServiceError } from "./errors.ts";
export { FaultInjector, type FaultSpec } from "./faults.ts";
export type {
  CaCertificateRecord,
  CertificateRecord,
  CertificateStatus,
  IotSnapshot,
  PolicyRecord,
  ProvisioningTemplateRecord,
  RegistrationConfig,
  ThingGroupRecord,
  ThingRecord,
  ThingTypeRecord,
  TopicRuleRecord,
} from "./iot-state.ts";
export { IotState } from "./iot-state.ts";
export type { EmulatorContext } from "./operation.ts";
export { FAULTS_PATH, RESET_PATH } from "./router.ts";
export { topicPatternOf } from "./topic-rules.ts";
