import * as z from "zod/mini";

/** How a product's devices sign their requests to the vending API. */
export const productAuthModes = ["product-secret", "device-secret"] as const;
export type ProductAuthMode = (typeof productAuthModes)[number];

/** What happens when an already provisioned device asks for a certificate with a new key. */
export const reprovisionPolicies = ["never", "replace"] as const;
export type ReprovisionPolicy = (typeof reprovisionPolicies)[number];

export const productKeySchema = z
  .string()
  .check(z.regex(/^[A-Za-z0-9_-]{3,64}$/, "3-64 characters: letters, digits, '_' or '-'"));
export const serialNumberSchema = z
  .string()
  .check(z.regex(/^[A-Za-z0-9:_-]{1,128}$/, "1-128 characters: letters, digits, ':', '_' or '-'"));

/**
 * How a product's devices log in over MQTT with a secret (through the AWS IoT custom authorizer);
 * absent for certificate devices. `aliyun`: one secret per device (own, or derived from the
 * product secret). `aliyun-dynamic`: one secret per product; devices register (`register` for
 * pre-registered names, `regnwl` without pre-registration when allowed) to get their own secret or
 * token. `enos`: SecureMode 2 with the device secret; SecureMode 3 with the product secret only for
 * dynamic activation, when allowed.
 */
export const mqttAuthSchema = z.discriminatedUnion("scheme", [
  z.object({
    scheme: z.literal("aliyun"),
    timestampWindowSeconds: z.optional(z.number().check(z.int(), z.minimum(1), z.maximum(86_400))),
  }),
  z.object({
    scheme: z.literal("aliyun-dynamic"),
    allowRegnwl: z.boolean(),
    timestampWindowSeconds: z.optional(z.number().check(z.int(), z.minimum(1), z.maximum(86_400))),
  }),
  z.object({
    scheme: z.literal("enos"),
    dynamicActivation: z.boolean(),
    timestampWindowSeconds: z.optional(z.number().check(z.int(), z.minimum(1), z.maximum(86_400))),
  }),
]);
export type MqttAuth = z.infer<typeof mqttAuthSchema>;

/** Who may own a device of a product (issue 11): one user at a time, or any number. */
export const bindingOwnerships = ["single-owner", "shared"] as const;
export type BindingOwnership = (typeof bindingOwnerships)[number];

/**
 * A product's device–user binding setting. `tokenTtlSeconds`: how long a reported token binds.
 * Seeds 001/003 show a device's token living about 45 s on the device (`remainTime` 40,738–43,603
 * ms in the logs) and a report retried once after 30 s without an answer; the cloud keeps every
 * reported token until used or expired, so the default, 180 s, covers the device's window, its
 * retry, and the phone's discovery and bind (or a phone-made token's Wi-Fi provisioning).
 */
export const productBindingSchema = z.object({
  ownership: z.enum(bindingOwnerships),
  tokenTtlSeconds: z.number().check(z.int(), z.minimum(10), z.maximum(86_400)),
});
export type ProductBinding = z.infer<typeof productBindingSchema>;
export const DEFAULT_PRODUCT_BINDING: ProductBinding = { ownership: "single-owner", tokenTtlSeconds: 180 };

export const productSchema = z.object({
  productKey: productKeySchema,
  name: z.string().check(z.minLength(1), z.maxLength(256)),
  authMode: z.enum(productAuthModes),
  allowServerKeys: z.boolean(),
  templateName: z.string().check(z.regex(/^[0-9A-Za-z_-]{1,36}$/)),
  policyName: z.string().check(z.minLength(1), z.maxLength(128)),
  reprovision: z.enum(reprovisionPolicies),
  /** CA certificate ids whose device certificates this product accepts (JITR / JITP). */
  trustedCaIds: z.array(z.string()),
  /**
   * Seconds a rotated device's old certificate keeps working if the device never connects with
   * its new one (then it is revoked anyway). Default DEFAULT_ROTATION_GRACE_SECONDS.
   */
  mqttAuth: z.optional(mqttAuthSchema),
  rotationGraceSeconds: z.optional(z.number().check(z.int(), z.minimum(60), z.maximum(365 * 86_400))),
  /** Device–user binding; DEFAULT_PRODUCT_BINDING when absent. */
  binding: z.optional(productBindingSchema),
  createdAt: z.string(),
});

/** A week: time enough for a device that was offline during its rotation to come back. */
export const DEFAULT_ROTATION_GRACE_SECONDS = 7 * 86_400;
export type Product = z.infer<typeof productSchema>;

export const deviceStatuses = ["registered", "provisioned", "disabled", "revoked"] as const;
export type DeviceStatus = (typeof deviceStatuses)[number];

/** The provisioning flows that take a claim on a device. */
export type ClaimFlow = "vend" | "jitr" | "fleet" | "rotate" | "bulk";

/**
 * A claim marks a provisioning flow in progress; it expires so a crashed flow cannot block a
 * device. See ARCHITECTURE.md "Claim and commit" for the protocol every flow follows.
 */
export type DeviceClaim = {
  id: string;
  /** The flow that holds it (absent on claims written before flows were recorded: vend or JITR). */
  flow?: ClaimFlow;
  publicKeyFingerprint: string;
  expiresAt: number;
  /**
   * The certificate the flow is provisioning: one it created (vend, recorded right after
   * creation so a takeover can destroy it) or the one AWS IoT created for fleet provisioning
   * (recorded by the hook, committed on the device's first connection).
   */
  certificateId?: string;
  /** Set by an operator's disable or revoke: the claim can no longer commit (operator wins). */
  cancelled?: boolean;
};

/** A rotation committed but not yet switched over to. */
export type PendingRotation = {
  certificateId: string;
  publicKeyFingerprint: string;
  /** The certificate being replaced (still working until the switch). */
  previousCertificateId: string;
  requestedAt: string;
  /** Epoch ms after which the old certificate is revoked even if the device never used the new one. */
  switchBy: number;
};

export type Device = {
  serialNumber: string;
  productKey: string;
  status: DeviceStatus;
  /** Incremented on every write: conditional writes compare it. */
  version: number;
  certificateId?: string;
  /**
   * The certificate whose activation this backend completed. A retry re-activates only a
   * certificate it committed and never got to activate, never one an operator set INACTIVE.
   */
  activatedCertificateId?: string;
  thingName?: string;
  publicKeyFingerprint?: string;
  /** The device's own secret, sealed with the registry key (never stored in plain text). */
  sealedSecret?: string;
  /**
   * SHA-256 (hex) of the device token issued by dynamic registration without pre-registration
   * (Alibaba `regnwl`); the token itself is never stored.
   */
  deviceTokenHash?: string;
  /** The same token, sealed: a registration repeated within seconds answers the same token. */
  sealedToken?: string;
  /** When dynamic registration last issued a secret or token (ISO time). */
  credentialIssuedAt?: string;
  claim?: DeviceClaim;
  /**
   * A certificate rotation in progress: the new certificate is ACTIVE and attached; the device
   * switches to it (its first connection with it, or the product's grace period running out), and
   * then the old one is revoked. See lambdas/core/rotation/.
   */
  rotation?: PendingRotation;
  statusReason?: string;
  createdAt: string;
  updatedAt: string;
  provisionedAt?: string;
};

/** A claim that still blocks other flows: not expired and not cancelled by an operator. */
export function isClaimActive(device: Device, nowMs: number): boolean {
  return device.claim !== undefined && device.claim.expiresAt > nowMs && device.claim.cancelled !== true;
}

/** Statuses in which a device may be provisioned (a claim taken, a claim committed). */
export const provisionableStatuses: readonly DeviceStatus[] = ["registered", "provisioned"];
