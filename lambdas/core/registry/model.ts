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
  createdAt: z.string(),
});
export type Product = z.infer<typeof productSchema>;

export const deviceStatuses = ["registered", "provisioned", "disabled", "revoked"] as const;
export type DeviceStatus = (typeof deviceStatuses)[number];

/** A claim marks a provisioning flow in progress; it expires so a crashed flow cannot block a device. */
export type DeviceClaim = {
  id: string;
  publicKeyFingerprint: string;
  expiresAt: number;
  /** Set once the flow has created a certificate, so a takeover can clean it up. */
  certificateId?: string;
};

export type Device = {
  serialNumber: string;
  productKey: string;
  status: DeviceStatus;
  /** Incremented on every write: conditional writes compare it. */
  version: number;
  certificateId?: string;
  thingName?: string;
  publicKeyFingerprint?: string;
  /** The device's own secret, sealed with the registry key (never stored in plain text). */
  sealedSecret?: string;
  claim?: DeviceClaim;
  statusReason?: string;
  createdAt: string;
  updatedAt: string;
  provisionedAt?: string;
};

export function isClaimActive(device: Device, nowMs: number): boolean {
  return device.claim !== undefined && device.claim.expiresAt > nowMs;
}
