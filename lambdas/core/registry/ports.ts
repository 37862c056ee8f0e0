import type { Device, DeviceClaim, DeviceStatus, PendingRotation, Product } from "./model.ts";

/** A new device row for the registry (import, demo seed). */
export type NewDevice = { serialNumber: string; productKey: string; sealedSecret?: string };

/**
 * What one import call did: rows written, rows left alone because the serial exists, and how
 * often the database pushed back (unprocessed items / throttling answered with backoff, not failure).
 */
export type ImportOutcome = {
  written: number;
  skippedExisting: number;
  unprocessedRetries: number;
  throttledRetries: number;
};

/**
 * The serial-number registry. Every write is conditional; implementations translate failed
 * conditions into domain errors (or the documented `false` results) and never check-then-write.
 */
export interface Registry {
  getProduct(productKey: string): Promise<Product | undefined>;
  /** Throws ConflictError(PRODUCT_EXISTS) when the product key is taken. */
  createProduct(product: Product): Promise<void>;
  listProducts(): Promise<Product[]>;

  getDevice(serialNumber: string): Promise<Device | undefined>;
  listDevices(
    productKey: string,
    options?: { limit?: number; cursor?: string },
  ): Promise<{
    devices: Device[];
    cursor?: string;
  }>;
  /**
   * Writes devices that do not exist yet; existing serials are left untouched (safe to re-run).
   * Throughput push-back is waited out (never an abort); other failures throw.
   */
  importDevices(devices: NewDevice[]): Promise<ImportOutcome>;
  /**
   * Moves a product's device rows written before the listing index was sharded to their shard
   * keys (idempotent; listing reads both meanwhile). `skipped`: rows another writer moved first.
   */
  migrateDeviceKeys(
    productKey: string,
    onProgress?: (moved: number) => void,
  ): Promise<{ moved: number; skipped: number }>;

  /**
   * Takes the provisioning claim on a device if `device.version` is still current, the device is
   * registered or provisioned, and no other live claim exists (an expired or cancelled one may be
   * replaced). Returns the updated device, or undefined when someone else won.
   */
  claimDevice(device: Device, claim: DeviceClaim, nowMs: number): Promise<Device | undefined>;
  /** Records the certificate a claim created, so a crashed flow can be cleaned up later. */
  recordClaimCertificate(serialNumber: string, claimId: string, certificateId: string): Promise<void>;
  /**
   * Completes a claim: status provisioned with the new certificate. Conditional on the claim still
   * being this one, not cancelled, and the device still registered or provisioned: false when an
   * operator's disable/revoke or another flow came first (the caller then undoes its work).
   */
  completeClaim(
    serialNumber: string,
    claimId: string,
    result: { certificateId: string; thingName: string; publicKeyFingerprint: string; at: string },
  ): Promise<boolean>;
  /**
   * For a flow whose claim an operator's `disable` cancelled, when the certificate is the
   * device's own (JITR: burned into the device, unusable once INACTIVE): records it as the
   * disabled device's certificate, exactly as a provisioned device that was then disabled, so
   * `enable` restores it. Conditional on the claim and on the device still being disabled.
   */
  keepForDisabledDevice(
    serialNumber: string,
    claimId: string,
    result: { certificateId: string; thingName: string; publicKeyFingerprint: string; at: string },
  ): Promise<boolean>;
  /**
   * Commits a rotation claim: records the new certificate as the device's pending rotation.
   * Conditional on the claim (this one, not cancelled), the device still provisioned, and still on
   * the certificate being replaced. False otherwise (the caller undoes its work).
   */
  commitRotation(serialNumber: string, claimId: string, rotation: PendingRotation): Promise<boolean>;
  /**
   * Switches a device to its pending rotation's certificate (the new one becomes the device's, the
   * rotation is removed). Conditional on the pending rotation naming that certificate and the
   * device still on the previous one. False otherwise.
   */
  completeRotation(serialNumber: string, rotation: PendingRotation): Promise<boolean>;
  /**
   * A secret-born device's first successful login: `registered` → `provisioned` with its thing.
   * Conditional on the device still being registered; false otherwise (already done, or changed).
   */
  commitSecretLogin(serialNumber: string, thingName: string, at: string): Promise<boolean>;
  /**
   * Dynamic registration issues a device its own credential: a sealed device secret (`register`),
   * or a device token kept hashed and sealed (`regnwl`). Conditional on `version` (so of concurrent
   * registrations exactly one writes) and on the device still being `registered` (a device that
   * has logged in with its credential registers again only after an operator's reset).
   */
  issueCredential(
    serialNumber: string,
    version: number,
    credential: { sealedSecret: string } | { deviceTokenHash: string; sealedToken: string },
    at: string,
  ): Promise<boolean>;
  /** Creates a device record unless the serial exists (registration without pre-registration). */
  createDevice(device: NewDevice): Promise<boolean>;
  /**
   * An operator's reset of a secret-born device: back to `registered`, its issued credential
   * (`forgetSecret`: also a sealed secret registration or activation issued) and first-login record
   * removed, so it can register again. Conditional on `version`.
   */
  resetRegistration(
    serialNumber: string,
    version: number,
    options: { forgetSecret: boolean },
  ): Promise<boolean>;
  /** Drops a claim (after a rollback). No-op if the claim is no longer there. */
  releaseClaim(serialNumber: string, claimId: string): Promise<void>;
  /** Records that the device's committed certificate was activated. False if it is no longer the device's. */
  markActivated(serialNumber: string, certificateId: string): Promise<boolean>;
  /**
   * Forgets a certificate that no longer exists in AWS IoT (deleted by an operator, or lost): the
   * device goes back to `registered` so it can provision again after proving itself. Conditional on
   * the device still naming that certificate; false otherwise.
   */
  forgetCertificate(serialNumber: string, certificateId: string): Promise<boolean>;

  /**
   * Operator status changes (disable, revoke, re-enable), conditional on the current status being
   * one of `from`. A live claim is cancelled in the same write, so the flow holding it cannot
   * commit (the operator always wins). Returns the device after the change, with the cancelled
   * claim. Throws NotFoundError for unknown serials, ConflictError(WRONG_STATUS) otherwise.
   */
  setDeviceStatus(
    serialNumber: string,
    status: DeviceStatus,
    options: { from: readonly DeviceStatus[]; reason?: string },
  ): Promise<Device>;
}

/** Single-use nonces for signed requests. */
export interface NonceStore {
  /** Records the nonce; false when it was already used and has not expired. */
  use(scope: string, nonce: string, expiresAtMs: number, nowMs: number): Promise<boolean>;
}

/** Where secrets live (a key file locally, Secrets Manager on AWS). */
export interface SecretStore {
  getProductSecret(productKey: string): Promise<string | undefined>;
  /** Stores a new product secret; false (and nothing changed) when one exists already. */
  createProductSecret(productKey: string, secret: string): Promise<boolean>;
  /**
   * The 32-byte keys that seal per-device secrets kept in the registry, by key id, and the id of
   * the one new seals use (see sealed-secret.ts). `fresh` reads past any cache: a sealed value
   * names a key id this copy does not know yet (a rotation added it).
   */
  getRegistryKeys(options?: {
    fresh?: boolean;
  }): Promise<{ currentKeyId: string; keys: ReadonlyMap<string, Buffer> }>;
}
