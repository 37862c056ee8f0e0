import { describeError } from "../describe-error.ts";
import type { Logger } from "../logger.ts";
import { METRIC, type Metrics, noMetrics } from "../metrics.ts";
import { type CertificateFacts, readCertificate } from "../pki/certificate-reader.ts";
import { activateCommitted, inProgress, takeClaim } from "../registry/claims.ts";
import { ensureAttached } from "../registry/ensure-attached.ts";
import { type Device, type Product, serialNumberSchema } from "../registry/model.ts";
import type { Registry } from "../registry/ports.ts";
import { registerDeviceThing, ThingNameTakenError } from "../registry/register-device-thing.ts";
import type { TemplateSource } from "../vending/ports.ts";
import type { DescribedCertificate, JitrIot } from "./ports.ts";
import type { RegistrationEvent } from "./registration-event.ts";

/** Why a certificate was refused (and, where it still existed, revoked). */
export type JitrRejectionReason =
  | "malformed-event"
  | "certificate-not-found"
  | "certificate-revoked"
  | "bad-subject"
  | "unknown-device"
  | "unknown-product"
  | "device-disabled"
  | "device-revoked"
  | "untrusted-ca"
  | "ca-mismatch"
  | "provisioned-with-another-certificate"
  | "certificate-deactivated"
  | "thing-name-taken";

/** What became of a registration event. */
export type JitrOutcome =
  | { outcome: "activated"; certificateId: string; serialNumber: string; thingName: string }
  | { outcome: "already-active"; certificateId: string }
  /** A certificate of a CA that no product trusts: another application's, left untouched. */
  | { outcome: "ignored"; certificateId: string; caCertificateId: string }
  | { outcome: "rejected"; reason: JitrRejectionReason; certificateId: string; serialNumber?: string };

/** Settings of the JITR flow. */
export type JitrConfig = {
  /** How long a claim blocks other flows on the same device (ms); longer than the Lambda timeout. */
  claimTtlMs: number;
};

/** A claim outlives the JITR Lambda (its timeout must stay below two minutes). */
export const defaultJitrConfig: JitrConfig = { claimTtlMs: 2 * 60_000 };

/** What the JITR use case needs; `clock` is for tests. */
export type JitrDeps = {
  registry: Registry;
  iot: JitrIot;
  templates: TemplateSource;
  logger: Logger;
  /** Counts undo steps and undo failures; none when absent. */
  metrics?: Metrics;
  config?: JitrConfig;
  clock?: () => number;
};

/**
 * Just-in-time registration: decides about a certificate AWS IoT auto-registered as
 * PENDING_ACTIVATION when a device first connected with it. The certificate's CN is the serial
 * number; the device must be in the registry (registered, or provisioned with this very
 * certificate) and its product must trust the signing CA. An allowed device is provisioned like
 * the vending flow does it (same claim, RegisterThing with the product's template, registry
 * commit) and its certificate activated last; any other certificate is revoked.
 *
 * Idempotent: the event repeats on every reconnect of a pending certificate and may be delivered
 * twice. A failure midway undoes this flow's own steps (policies and thing detached, the thing
 * deleted if unused, the claim released), leaves the certificate itself alone, and rethrows so
 * the event is retried.
 */
export async function registerDeviceCertificate(
  deps: JitrDeps,
  event: RegistrationEvent,
): Promise<JitrOutcome> {
  const { certificateId } = event;
  const certificate = await deps.iot.describeCertificate(certificateId);
  if (!certificate) {
    deps.logger.warn("jitr: certificate not found", { certificateId });
    return { outcome: "rejected", reason: "certificate-not-found", certificateId };
  }
  if (certificate.status === "ACTIVE") return { outcome: "already-active", certificateId };
  if (certificate.status === "REVOKED") {
    return { outcome: "rejected", reason: "certificate-revoked", certificateId };
  }
  // The topic rule sees every CA of the account: a CA that no product trusts belongs to another
  // application, whose certificates are none of ours to revoke.
  const caCertificateId = certificate.caCertificateId ?? event.caCertificateId;
  const products = await deps.registry.listProducts();
  if (!products.some((p) => p.trustedCaIds.includes(caCertificateId))) {
    deps.logger.info("jitr: certificate of a CA no product trusts, left untouched", {
      certificateId,
      caCertificateId,
    });
    return { outcome: "ignored", certificateId, caCertificateId };
  }
  if (certificate.caCertificateId && certificate.caCertificateId !== event.caCertificateId) {
    return reject(deps, certificate, "ca-mismatch");
  }

  const parsed = readCertificateOrUndefined(certificate.certificatePem);
  const serial = serialNumberSchema.safeParse(parsed?.subject.commonName);
  if (!parsed || !serial.success) return reject(deps, certificate, "bad-subject");
  const serialNumber = serial.data;

  const device = await deps.registry.getDevice(serialNumber);
  if (!device) return reject(deps, certificate, "unknown-device", serialNumber);
  const product = await deps.registry.getProduct(device.productKey);
  if (!product) return reject(deps, certificate, "unknown-product", serialNumber);

  const refusal = refusalReason(device, product, caCertificateId, certificateId);
  if (refusal === "device-disabled") {
    // Disabling is reversible: leave the certificate as it is (pending, or the device's own made
    // INACTIVE by `disable`), so that after `enable` the device's next connection registers it.
    deps.logger.warn("jitr: certificate of a disabled device left untouched", {
      serialNumber,
      certificateId,
    });
    return { outcome: "rejected", reason: refusal, certificateId, serialNumber };
  }
  if (refusal) return reject(deps, certificate, refusal, serialNumber);

  if (device.status === "provisioned") {
    // Provisioned with this certificate by an earlier delivery that did not finish: complete it.
    if (device.activatedCertificateId === certificateId) {
      // Activated once and since deactivated by an operator: never undo an operator's change.
      deps.logger.warn("jitr: certificate deactivated by an operator left as it is", {
        serialNumber,
        certificateId,
      });
      return { outcome: "rejected", reason: "certificate-deactivated", certificateId, serialNumber };
    }
    const attachments = await deps.iot.inspectCertificate(certificateId);
    if (attachments) await ensureAttached(deps, product, device, attachments);
    const activation = await activateCommitted(deps, serialNumber, certificateId);
    if (activation !== "active") return operatorWon(serialNumber, certificateId, activation);
    deps.logger.info("jitr: certificate activated (already provisioned)", { serialNumber, certificateId });
    return { outcome: "activated", certificateId, serialNumber, thingName: device.thingName ?? serialNumber };
  }
  return provision(deps, device, product, certificate, parsed);
}

/** The operator disabled or revoked the device while this flow ran: their change stands. */
function operatorWon(
  serialNumber: string,
  certificateId: string,
  status: "disabled" | "revoked",
): JitrOutcome {
  return {
    outcome: "rejected",
    reason: status === "revoked" ? "device-revoked" : "device-disabled",
    certificateId,
    serialNumber,
  };
}

/** The certificate's subject and key, or undefined when it does not parse (then refused as bad-subject). */
function readCertificateOrUndefined(pem: string): CertificateFacts | undefined {
  try {
    return readCertificate(pem);
  } catch {
    return undefined;
  }
}

/** Registry and trust checks; undefined when the certificate may be activated. */
function refusalReason(
  device: Device,
  product: Product,
  caCertificateId: string,
  certificateId: string,
): JitrRejectionReason | undefined {
  if (device.status === "revoked") return "device-revoked";
  if (device.status === "disabled") return "device-disabled";
  if (!product.trustedCaIds.includes(caCertificateId)) return "untrusted-ca";
  if (device.status === "provisioned" && device.certificateId !== certificateId) {
    return "provisioned-with-another-certificate";
  }
  return undefined;
}

/** Claim, RegisterThing, registry commit, then activation; undone (except activation) on failure. */
async function provision(
  deps: JitrDeps,
  device: Device,
  product: Product,
  certificate: DescribedCertificate,
  parsed: CertificateFacts,
): Promise<JitrOutcome> {
  const now = (deps.clock ?? Date.now)();
  const { serialNumber, productKey } = device;
  const { certificateId } = certificate;
  const log = { serialNumber, productKey, certificateId };
  // The certificate is recorded on the claim so an operator's disable/revoke reaches it and the
  // reconciler can resume a crashed flow; a takeover never destroys a JITR claim's certificate.
  const claim = await takeClaim(deps, device, {
    flow: "jitr",
    certificateId,
    publicKeyFingerprint: parsed.publicKeyFingerprint,
    ttlMs: (deps.config ?? defaultJitrConfig).claimTtlMs,
    now,
  });

  let thingName = serialNumber;
  let createdThing = false;
  let step = "register-thing";
  try {
    ({ thingName, created: createdThing } = await registerDeviceThing(
      deps,
      product,
      serialNumber,
      certificateId,
    ));
    step = "commit";
    const committed = await deps.registry.completeClaim(serialNumber, claim.id, {
      certificateId,
      thingName,
      publicKeyFingerprint: parsed.publicKeyFingerprint,
      at: new Date(now).toISOString(),
    });
    if (!committed) {
      // The commit lost: an operator's disable or revoke cancelled the claim; their change stands.
      // A disabled device keeps its own certificate INACTIVE with its thing (as if it had been
      // disabled after provisioning), so `enable` brings it back; a revoked one is undone below
      // and its certificate revoked.
      const record = {
        certificateId,
        thingName,
        publicKeyFingerprint: parsed.publicKeyFingerprint,
        at: new Date(now).toISOString(),
      };
      if (await deps.registry.keepForDisabledDevice(serialNumber, claim.id, record)) {
        await deps.iot.setCertificateStatus(certificateId, "INACTIVE");
        return operatorWon(serialNumber, certificateId, "disabled");
      }
      throw inProgress();
    }
  } catch (error) {
    deps.logger.warn("jitr failed, undoing", { ...log, step, error: describeError(error) });
    await undo(deps, serialNumber, claim.id, certificateId, createdThing ? thingName : undefined);
    if (error instanceof ThingNameTakenError) {
      // Our device, but its thing name belongs to something else: the operator must sort it out.
      // The certificate stays pending, so the device's next connection retries once it is fixed.
      deps.logger.error("jitr: a thing of the device's name exists that this backend did not make", log);
      return { outcome: "rejected", reason: "thing-name-taken", certificateId, serialNumber };
    }
    if (step === "commit") {
      const latest = await deps.registry.getDevice(serialNumber);
      if (latest?.status === "revoked") return reject(deps, certificate, "device-revoked", serialNumber);
    }
    throw error;
  }

  // Last: a failure here leaves the registry naming this certificate, and the retry activates it.
  const activation = await activateCommitted(deps, serialNumber, certificateId);
  if (activation !== "active") return operatorWon(serialNumber, certificateId, activation);
  deps.logger.info("jitr: certificate activated", { ...log, thingName });
  return { outcome: "activated", certificateId, serialNumber, thingName };
}

/** Revokes a refused certificate and says why (the log is the record; no secrets in it). */
async function reject(
  deps: JitrDeps,
  certificate: DescribedCertificate,
  reason: JitrRejectionReason,
  serialNumber?: string,
): Promise<JitrOutcome> {
  const { certificateId } = certificate;
  await deps.iot.setCertificateStatus(certificateId, "REVOKED");
  deps.logger.warn("jitr: certificate rejected and revoked", {
    reason,
    certificateId,
    caCertificateId: certificate.caCertificateId,
    ...(serialNumber ? { serialNumber } : {}),
  });
  return { outcome: "rejected", reason, certificateId, ...(serialNumber ? { serialNumber } : {}) };
}

/**
 * Best-effort undo; each step runs even if an earlier one failed. The certificate keeps its status
 * so the device's next connection (or the retried event) starts over. Anything left behind is
 * harmless: attachments are redone by the next RegisterThing, and the claim expires.
 */
async function undo(
  deps: JitrDeps,
  serialNumber: string,
  claimId: string,
  certificateId: string,
  createdThing: string | undefined,
): Promise<void> {
  const steps: Array<[string, () => Promise<void>]> = [
    ["detach", () => deps.iot.detachCertificate(certificateId)],
    ["delete-thing", async () => (createdThing ? deps.iot.deleteThingIfUnused(createdThing) : undefined)],
    ["release-claim", () => deps.registry.releaseClaim(serialNumber, claimId)],
  ];
  const metrics = deps.metrics ?? noMetrics;
  for (const [step, run] of steps) {
    metrics.count(METRIC.undoSteps, { flow: "jitr", step });
    await run().catch((error: unknown) => {
      metrics.count(METRIC.undoFailures);
      deps.logger.error("jitr undo step failed", {
        serialNumber,
        certificateId,
        step,
        error: describeError(error),
      });
    });
  }
}
