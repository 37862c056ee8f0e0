import { verifyVendSignature } from "#credentials/vend-signature.ts";
import { admitProvisioning } from "../admission/admit-provisioning.ts";
import type { ProvisioningBudget } from "../admission/ports.ts";
import { describeError } from "../describe-error.ts";
import { AuthenticationError, ConflictError, DeviceNotAllowedError, ValidationError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { METRIC, type Metrics, noMetrics } from "../metrics.ts";
import { readCertificate } from "../pki/certificate-reader.ts";
import { parseCsr } from "../pki/csr.ts";
import { activateCommitted, confirmActivation, inProgress, takeClaim } from "../registry/claims.ts";
import { ensureAttached } from "../registry/ensure-attached.ts";
import { type Device, isClaimActive, type Product } from "../registry/model.ts";
import type { NonceStore, Registry, SecretStore } from "../registry/ports.ts";
import {
  grantDevicePolicy,
  provisioningPath,
  type RegisteredThing,
  registerDeviceThing,
} from "../registry/register-device-thing.ts";
import { deviceSigningSecret } from "../registry/signing-secret.ts";
import type { CertificateAttachments, CreatedCertificate, IotProvisioning, TemplateSource } from "./ports.ts";
import type { VendRequest, VendResult } from "./vend-request.ts";

export type VendConfig = {
  /** How far a request's timestamp may be from the server clock (ms). */
  timestampWindowMs: number;
  /**
   * How long a claim blocks other flows on the same device (ms): the function's timeout plus a
   * margin (claimTtlFor), so a claim outlives its flow but a crashed flow blocks no longer.
   */
  claimTtlMs: number;
  /** The root CA of the MQTT endpoint's server certificate, returned to devices. */
  serverRootCaPem: string;
  /**
   * How long a request with the key of a flow in progress waits for that flow's answer (ms)
   * before it gets 409 with Retry-After. Default 3 s.
   */
  sameKeyWaitMs?: number;
};

export type VendDeps = {
  registry: Registry;
  nonces: NonceStore;
  secrets: SecretStore;
  iot: IotProvisioning;
  templates: TemplateSource;
  config: VendConfig;
  logger: Logger;
  /** Counts undo steps and undo failures (METRIC.undoSteps / undoFailures); none when absent. */
  metrics?: Metrics;
  /** The account's provisioning budget (admission control); none: every request is admitted. */
  budget?: ProvisioningBudget;
  clock?: () => number;
  /** Jitter of Retry-After; injectable for tests. */
  random?: () => number;
};

/**
 * The vend function's timeout (s): API Gateway gives up after 29 s, so the function stops first
 * and its own clean-up can answer. lib/constructs/vend-function.ts deploys it; the claim's lifetime
 * and the retry arithmetic (ARCHITECTURE.md "Retries and timeouts") follow from it.
 */
export const VEND_TIMEOUT_SECONDS = 28;

/** A claim lives as long as the flow that took it can run, plus 2 s. */
export function claimTtlFor(functionTimeoutSeconds: number): number {
  return (functionTimeoutSeconds + 2) * 1000;
}

export const defaultVendConfig = {
  timestampWindowMs: 5 * 60_000,
  claimTtlMs: claimTtlFor(VEND_TIMEOUT_SECONDS),
} as const;

/**
 * The certificate vending use case. A device proves itself with an HMAC over the request, the
 * registry claim makes the flow exclusive, and every step that fails before the registry records
 * the result is undone (certificate revoked and deleted, thing removed, claim released). The
 * certificate is created inactive and activated only after the registry commit; a retry with the
 * same CSR key finds the committed record and re-activates if needed.
 */
export async function vendCertificate(deps: VendDeps, request: VendRequest): Promise<VendResult> {
  const now = (deps.clock ?? Date.now)();
  const { serialNumber, productKey } = request;
  const [product, device] = await Promise.all([
    deps.registry.getProduct(productKey),
    deps.registry.getDevice(serialNumber),
  ]);

  await authenticate(deps, request, product, device, now);
  if (!product || !device || device.productKey !== productKey) throw new DeviceNotAllowedError("unknown");
  if (device.status === "disabled" || device.status === "revoked")
    throw new DeviceNotAllowedError(device.status);
  if (request.keyMode === "server" && !product.allowServerKeys) {
    throw new ValidationError(`Product ${productKey} requires a CSR: server-made keys are not allowed.`);
  }

  const csr = request.csr === undefined ? undefined : await parseCsr(request.csr);
  if (csr && csr.subject.commonName !== serialNumber) {
    throw new ValidationError("The CSR subject common name (CN) must be the serial number.");
  }

  const fingerprint = csr?.publicKeyFingerprint;
  let replaced: string | undefined;
  if (device.status === "provisioned" && device.certificateId) {
    const recorded = await deps.iot.inspectCertificate(device.certificateId);
    if (!recorded) {
      // The record names a certificate AWS IoT no longer has (deleted by an operator, or lost):
      // not a revocation. The device proved itself above, so it provisions again.
      deps.logger.warn("registry names a missing certificate; provisioning again", {
        serialNumber,
        certificateId: device.certificateId,
      });
    } else if (fingerprint && device.publicKeyFingerprint === fingerprint) {
      return replayProvisioned(deps, product, device, recorded);
    } else if (product.reprovision === "never") {
      throw new ConflictError("ALREADY_PROVISIONED", "This device is already provisioned.");
    } else {
      replaced = device.certificateId;
    }
  }

  // Over the account's provisioning budget: 429 at once, before any AWS IoT call (and before the
  // claim, so a refused device holds nothing).
  await admitProvisioning(deps);

  let claim: Awaited<ReturnType<typeof takeClaim>>;
  try {
    claim = await takeClaim(deps, device, {
      flow: "vend",
      publicKeyFingerprint: fingerprint ?? "server-key",
      ttlMs: deps.config.claimTtlMs,
      now,
    });
  } catch (error) {
    // The same key's flow is in progress (a device that retried, or sent twice): its answer is ours.
    if (fingerprint && error instanceof ConflictError && error.code === "PROVISIONING_IN_PROGRESS") {
      const latest = await deps.registry.getDevice(serialNumber);
      if (latest?.claim?.publicKeyFingerprint === fingerprint && isClaimActive(latest, now)) {
        return waitForSameKeyFlow(deps, product, serialNumber, fingerprint);
      }
    }
    throw error;
  }

  const log = { serialNumber, productKey };
  // Direct path, first provisioning: the certificate is made ACTIVE at once (no UpdateCertificate,
  // a 10 TPS operation); it has no thing and no policy, so it can do nothing until the permissions,
  // which come only after the registry commit. A re-provision's thing is in its product's group
  // already, so its new certificate would have permissions as soon as it is attached: it stays
  // INACTIVE until after the commit, like the template path's.
  const activeAtOnce = provisioningPath(product) === "direct" && device.status === "registered";
  let certificate: (CreatedCertificate & { privateKeyPem?: string }) | undefined;
  let thingName = serialNumber;
  let createdThing = false;
  let registered: RegisteredThing | undefined;
  try {
    certificate = request.csr
      ? await deps.iot.createCertificateFromCsr(request.csr, { setAsActive: activeAtOnce })
      : await deps.iot.createKeysAndCertificate({ setAsActive: activeAtOnce });
    await deps.registry.recordClaimCertificate(serialNumber, claim.id, certificate.certificateId);
    registered = await registerDeviceThing(deps, product, serialNumber, certificate.certificateId, {
      path: "product",
      certificateArn: certificate.certificateArn,
      grant: "later",
    });
    ({ thingName, created: createdThing } = registered);
    const committed = await deps.registry.completeClaim(serialNumber, claim.id, {
      certificateId: certificate.certificateId,
      thingName,
      publicKeyFingerprint: fingerprint ?? readCertificate(certificate.certificatePem).publicKeyFingerprint,
      at: new Date(now).toISOString(),
    });
    if (!committed) throw await lostClaim(deps, serialNumber);
  } catch (error) {
    deps.logger.warn("vend failed, undoing", {
      ...log,
      step: failedStep(certificate),
      error: describeError(error),
    });
    await undo(deps, device, claim.id, certificate?.certificateId, createdThing ? thingName : undefined);
    throw error;
  }

  // Committed: a failure from here on is completed by the device's retry with the same key
  // (replayProvisioned redoes the missing attachments and the activation).
  let outcome: Awaited<ReturnType<typeof activateCommitted>>;
  if (!registered.granted) await grantDevicePolicy(deps, product, thingName);
  if (activeAtOnce) outcome = await confirmActivation(deps, serialNumber, certificate.certificateId);
  else outcome = await activateCommitted(deps, serialNumber, certificate.certificateId);
  if (outcome !== "active") throw new DeviceNotAllowedError(outcome);
  if (replaced && replaced !== certificate.certificateId) {
    await deps.iot.destroyCertificate(replaced).catch((error: unknown) =>
      deps.logger.error("could not remove the replaced certificate", {
        ...log,
        certificateId: replaced,
        error: describeError(error),
      }),
    );
  }
  deps.logger.info("certificate vended", { ...log, certificateId: certificate.certificateId, thingName });
  return {
    certificateId: certificate.certificateId,
    certificateArn: certificate.certificateArn,
    certificatePem: certificate.certificatePem,
    thingName,
    rootCaPem: deps.config.serverRootCaPem,
    mqttEndpoint: await deps.iot.getDataEndpoint(),
    ...(certificate.privateKeyPem === undefined ? {} : { privateKeyPem: certificate.privateKeyPem }),
    replayed: false,
  };
}

/** Signature first, then freshness, then the nonce: an unknown device and a bad key look the same. */
async function authenticate(
  deps: VendDeps,
  request: VendRequest,
  product: Product | undefined,
  device: Device | undefined,
  now: number,
): Promise<void> {
  const secret = product ? await deviceSigningSecret(deps, product, device, request.serialNumber) : undefined;
  if (secret === undefined || !verifyVendSignature(request, secret, request.signature)) {
    throw new AuthenticationError("BAD_SIGNATURE", "The request signature does not match.");
  }
  if (Math.abs(now - request.timestamp) > deps.config.timestampWindowMs) {
    throw new AuthenticationError("STALE_TIMESTAMP", "The request timestamp is outside the accepted window.");
  }
  const scope = `${request.productKey}/${request.serialNumber}`;
  const fresh = await deps.nonces.use(
    scope,
    request.nonce,
    request.timestamp + deps.config.timestampWindowMs,
    now,
  );
  if (!fresh) throw new AuthenticationError("NONCE_REUSED", "This nonce was already used.");
}

/**
 * A retry with the committed certificate's key: answer with that certificate. If this backend
 * never got to activate it (a crash or failure after the commit), complete the provisioning
 * (attachments, then activation); one it activated and an operator later set INACTIVE stays so.
 */
async function replayProvisioned(
  deps: VendDeps,
  product: Product,
  device: Device,
  certificate: CertificateAttachments,
): Promise<VendResult> {
  const { certificateId } = certificate;
  if (certificate.status === "REVOKED") throw new DeviceNotAllowedError("revoked");
  if (certificate.status !== "ACTIVE" && device.activatedCertificateId === certificateId) {
    throw new DeviceNotAllowedError("disabled");
  }
  await ensureAttached(deps, product, device, certificate, { path: "product" });
  if (certificate.status !== "ACTIVE") {
    const outcome = await activateCommitted(deps, device.serialNumber, certificateId);
    if (outcome !== "active") throw new DeviceNotAllowedError(outcome);
  } else if (device.activatedCertificateId !== certificateId) {
    // Direct path: ACTIVE since its creation, but the flow stopped before recording the activation.
    const outcome = await confirmActivation(deps, device.serialNumber, certificateId);
    if (outcome !== "active") throw new DeviceNotAllowedError(outcome);
  }
  const described = await deps.iot.describeCertificate(certificateId);
  if (!described) throw inProgress();
  return {
    certificateId,
    certificateArn: described.certificateArn,
    certificatePem: described.certificatePem,
    thingName: device.thingName ?? device.serialNumber,
    rootCaPem: deps.config.serverRootCaPem,
    mqttEndpoint: await deps.iot.getDataEndpoint(),
    replayed: true,
  };
}

/**
 * A request whose key is the one a flow in progress is provisioning (a device that retried
 * before its first answer arrived): wait briefly for that flow and answer with its certificate,
 * or 409 with Retry-After when it is still running (or failed; the retry starts over).
 */
async function waitForSameKeyFlow(
  deps: VendDeps,
  product: Product,
  serialNumber: string,
  fingerprint: string,
): Promise<VendResult> {
  const clock = deps.clock ?? Date.now;
  // Polls every 100 ms for the wait's length (counted in polls, so an injected clock cannot stall it).
  const polls = Math.ceil((deps.config.sameKeyWaitMs ?? 3_000) / 100);
  for (let poll = 0; poll < polls; poll++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const device = await deps.registry.getDevice(serialNumber);
    if (!device) throw new DeviceNotAllowedError("unknown");
    if (device.status === "disabled" || device.status === "revoked")
      throw new DeviceNotAllowedError(device.status);
    if (
      device.status === "provisioned" &&
      device.publicKeyFingerprint === fingerprint &&
      device.certificateId
    ) {
      const certificate = await deps.iot.inspectCertificate(device.certificateId);
      if (certificate) return replayProvisioned(deps, product, device, certificate);
    }
    if (!isClaimActive(device, clock())) break;
  }
  throw inProgress();
}

/** Why a commit did not land: an operator's disable/revoke, or another flow (retry). */
async function lostClaim(deps: VendDeps, serialNumber: string): Promise<Error> {
  const device = await deps.registry.getDevice(serialNumber);
  if (device?.status === "disabled" || device?.status === "revoked") {
    return new DeviceNotAllowedError(device.status);
  }
  return inProgress();
}

/**
 * Best-effort undo of a failed flow. If an undo step fails too, the claim keeps the certificate
 * id and the next flow for this device cleans it up once the claim has expired.
 */
async function undo(
  deps: VendDeps,
  device: Device,
  claimId: string,
  certificateId: string | undefined,
  createdThing: string | undefined,
): Promise<void> {
  const metrics = deps.metrics ?? noMetrics;
  const step = (name: string) => metrics.count(METRIC.undoSteps, { flow: "vend", step: name });
  try {
    if (certificateId) {
      step("destroy-certificate");
      await deps.iot.destroyCertificate(certificateId);
    }
    if (createdThing) {
      step("delete-thing");
      await deps.iot.deleteThingIfUnused(createdThing);
    }
    step("release-claim");
    await deps.registry.releaseClaim(device.serialNumber, claimId);
  } catch (error) {
    metrics.count(METRIC.undoFailures);
    deps.logger.error("undo incomplete; the claim expires and the next attempt cleans up", {
      serialNumber: device.serialNumber,
      certificateId,
      error: describeError(error),
    });
  }
}

function failedStep(certificate: CreatedCertificate | undefined): string {
  return certificate ? "after-certificate" : "create-certificate";
}
