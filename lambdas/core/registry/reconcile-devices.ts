import { describeError } from "../describe-error.ts";
import type { JitrIot } from "../jitr/ports.ts";
import { registerDeviceCertificate } from "../jitr/register-device-certificate.ts";
import type { Logger } from "../logger.ts";
import { readCertificate } from "../pki/certificate-reader.ts";
import { finishRotation } from "../rotation/rotate-certificate.ts";
import type { CertificateAttachments, TemplateSource } from "../vending/ports.ts";
import { activateCommitted, settleStaleClaim } from "./claims.ts";
import { ensureAttached } from "./ensure-attached.ts";
import { type Device, isClaimActive, type Product } from "./model.ts";
import type { Registry } from "./ports.ts";

/** What the reconciler can find wrong between the registry and AWS IoT. */
export type FindingKind =
  /** The record names a certificate AWS IoT does not have: the device goes back to registered. */
  | "stale-certificate"
  /** The recorded certificate lacks its thing or policy: RegisterThing redoes them. */
  | "missing-attachments"
  /** Committed but never activated (a flow stopped after its commit): activated now. */
  | "not-activated"
  /** Disabled or revoked in the registry, but the certificate is not INACTIVE / REVOKED. */
  | "status-mismatch"
  /** Activated once, INACTIVE now while the registry says provisioned: an operator's choice, reported. */
  | "deactivated-in-aws-iot"
  /** A flow's claim past its expiry or cancelled: settled (committed, resumed or destroyed). */
  | "expired-claim"
  /** A certificate attached to the device's thing that the registry does not name: destroyed. */
  | "unrecorded-certificate"
  /** (--all) An unattached certificate made for a serial that no record or claim names: deleted. */
  | "orphan-certificate"
  /** A rotation whose device never connected with its new certificate within the grace period: switched. */
  | "rotation-past-grace";

export type Finding = {
  kind: FindingKind;
  serialNumber?: string;
  certificateId?: string;
  /** What was (or, in a dry run, would be) done. */
  action: string;
  repaired: boolean;
  error?: string;
};

/** The AWS IoT operations the reconciler needs on top of the flows'. */
export interface ReconcileIot extends JitrIot {
  /** Certificate ids (not ARNs) attached to a thing; empty when the thing does not exist. */
  listThingCertificates(thingName: string): Promise<string[]>;
  /** Every certificate of the account, page by page. */
  listCertificates(): AsyncIterable<{ certificateId: string; status: string }>;
  deleteUnattachedCertificate(certificateId: string): Promise<void>;
}

export type ReconcileDeps = {
  registry: Registry;
  iot: ReconcileIot;
  templates: TemplateSource;
  logger: Logger;
  clock?: () => number;
};

export type ReconcileScope = { serialNumber: string } | { productKey: string } | { all: true };

/**
 * Compares the registry with AWS IoT and repairs what a crash, a failed undo or an operator's
 * change in AWS IoT left behind, so every device converges to the complete state (certificate
 * ACTIVE, attached to its thing, policy attached, registry committed) or to the operator's
 * disabled/revoked state. Each repair is one of the flows' own idempotent steps; a dry run
 * reports the same findings and changes nothing. One device's failure is reported and the rest go
 * on.
 */
export async function reconcileDevices(
  deps: ReconcileDeps,
  scope: ReconcileScope,
  options: { dryRun: boolean; onProgress?: (done: number) => void },
): Promise<{ checked: number; findings: Finding[] }> {
  const findings: Finding[] = [];
  const products = new Map<string, Product | undefined>();
  const productOf = async (key: string) => {
    if (!products.has(key)) products.set(key, await deps.registry.getProduct(key));
    return products.get(key);
  };
  const known: KnownDevices = { certificates: new Set(), keys: new Map() };
  let checked = 0;
  for await (const device of devicesIn(deps.registry, scope)) {
    const product = await productOf(device.productKey);
    const found = await reconcileDevice(deps, device, product, options.dryRun).catch(
      (error: unknown): Finding[] => [
        {
          kind: "expired-claim",
          serialNumber: device.serialNumber,
          action: "check failed",
          repaired: false,
          error: describeError(error),
        },
      ],
    );
    findings.push(...found);
    const current = (await deps.registry.getDevice(device.serialNumber)) ?? device;
    for (const id of [current.certificateId, current.claim?.certificateId])
      if (id) known.certificates.add(id);
    for (const key of [current.publicKeyFingerprint, current.claim?.publicKeyFingerprint]) {
      if (key) known.keys.set(key, current.serialNumber);
    }
    checked++;
    options.onProgress?.(checked);
  }
  if ("all" in scope) findings.push(...(await orphanCertificates(deps, known, options.dryRun)));
  return { checked, findings };
}

async function* devicesIn(registry: Registry, scope: ReconcileScope): AsyncIterable<Device> {
  if ("serialNumber" in scope) {
    const device = await registry.getDevice(scope.serialNumber);
    if (device) yield device;
    return;
  }
  const productKeys =
    "productKey" in scope ? [scope.productKey] : (await registry.listProducts()).map((p) => p.productKey);
  for (const productKey of productKeys) {
    let cursor: string | undefined;
    do {
      const page = await registry.listDevices(productKey, { limit: 100, ...(cursor ? { cursor } : {}) });
      for (const device of page.devices) yield device;
      cursor = page.cursor;
    } while (cursor);
  }
}

async function reconcileDevice(
  deps: ReconcileDeps,
  listed: Device,
  product: Product | undefined,
  dryRun: boolean,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  const now = (deps.clock ?? Date.now)();
  const { serialNumber } = listed;
  const record = (finding: Omit<Finding, "serialNumber" | "repaired">, repaired = !dryRun) =>
    findings.push({ serialNumber, ...finding, repaired });
  let device = (await deps.registry.getDevice(serialNumber)) ?? listed;

  // 1. A claim that no longer blocks: settle it the way the next flow would.
  const claim = device.claim;
  if (claim && !isClaimActive(device, now)) {
    const certificateId = claim.certificateId;
    if (claim.flow === "jitr" && certificateId && !claim.cancelled) {
      record({ kind: "expired-claim", certificateId, action: "resume just-in-time registration" }, false);
      if (!dryRun) {
        const outcome = await registerDeviceCertificate(deps, {
          certificateId,
          caCertificateId: (await deps.iot.describeCertificate(certificateId))?.caCertificateId ?? "",
          timestamp: now,
          awsAccountId: "",
          certificateStatus: "PENDING_ACTIVATION",
        });
        findings.at(-1)!.repaired = outcome.outcome === "activated";
        if (outcome.outcome !== "activated") findings.at(-1)!.action += ` (${outcome.outcome})`;
      }
    } else {
      record({
        kind: "expired-claim",
        ...(certificateId ? { certificateId } : {}),
        action:
          claim.flow === "fleet" ? "commit if provisioned, else destroy" : "destroy its certificate, release",
      });
      if (!dryRun) {
        device = await settleStaleClaim(deps, device, now);
        if (device.claim?.id === claim.id) await deps.registry.releaseClaim(serialNumber, claim.id);
      }
    }
    device = (await deps.registry.getDevice(serialNumber)) ?? device;
  }

  // 2. A rotation past its grace period: the switch happens without the device's connection.
  if (device.rotation && device.rotation.switchBy <= now && device.status === "provisioned") {
    record({
      kind: "rotation-past-grace",
      certificateId: device.rotation.certificateId,
      action: "switch to the new certificate, revoke the old one",
    });
    if (!dryRun) await finishRotation(deps, device, undefined);
    device = (await deps.registry.getDevice(serialNumber)) ?? device;
  }

  // 3. The recorded certificate against AWS IoT.
  let recorded: CertificateAttachments | undefined;
  if (device.certificateId) {
    recorded = await deps.iot.inspectCertificate(device.certificateId);
    const certificateId = device.certificateId;
    if (!recorded) {
      if (device.status === "provisioned") {
        record({ kind: "stale-certificate", certificateId, action: "back to registered (provisions again)" });
        if (!dryRun) await deps.registry.forgetCertificate(serialNumber, certificateId);
      }
    } else if (device.status === "disabled" || device.status === "revoked") {
      const wanted = device.status === "revoked" ? "REVOKED" : "INACTIVE";
      if (recorded.status !== wanted && recorded.status !== "REVOKED") {
        record({ kind: "status-mismatch", certificateId, action: `set ${wanted}` });
        if (!dryRun) await deps.iot.setCertificateStatus(certificateId, wanted);
      }
    } else if (device.status === "provisioned" && product) {
      const complete =
        recorded.things.includes(device.thingName ?? serialNumber) && recorded.policies.length > 0;
      if (!complete && recorded.status !== "REVOKED") {
        record({ kind: "missing-attachments", certificateId, action: "attach thing and policy" });
        if (!dryRun) await ensureAttached(deps, product, device, recorded);
      }
      if (recorded.status !== "ACTIVE" && recorded.status !== "REVOKED") {
        if (device.activatedCertificateId === certificateId) {
          record(
            { kind: "deactivated-in-aws-iot", certificateId, action: "none (an operator's choice)" },
            false,
          );
        } else {
          record({ kind: "not-activated", certificateId, action: "activate" });
          if (!dryRun) await activateCommitted(deps, serialNumber, certificateId);
        }
      }
    }
  }

  // 4. Certificates on the device's thing that the registry does not name.
  const latest = (await deps.registry.getDevice(serialNumber)) ?? device;
  const named = new Set(
    [latest.certificateId, latest.claim?.certificateId, latest.rotation?.certificateId].filter(Boolean),
  );
  for (const certificateId of await deps.iot.listThingCertificates(latest.thingName ?? serialNumber)) {
    if (named.has(certificateId)) continue;
    record({ kind: "unrecorded-certificate", certificateId, action: "detach, revoke and delete" });
    if (!dryRun) await deps.iot.destroyCertificate(certificateId);
  }
  return findings;
}

/** What the registry names: certificate ids, and the public keys of devices and their claims. */
type KnownDevices = { certificates: Set<string>; keys: Map<string, string> };

/**
 * Certificates that a crashed flow made and never recorded (the window between
 * CreateCertificateFromCsr and recording it on the claim): not attached to anything, not
 * PENDING_ACTIVATION (a JITR device's own certificate waiting for its event), for the
 * public key of a device or of its claim (AWS IoT gives certificates made from a CSR the subject
 * "AWS IoT Certificate", so the key is what ties one to a device), yet named by no record or claim.
 * A device that retried with a new key after the crash leaves an orphan this cannot attribute.
 */
async function orphanCertificates(
  deps: ReconcileDeps,
  known: KnownDevices,
  dryRun: boolean,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for await (const { certificateId, status } of deps.iot.listCertificates()) {
    // ACTIVE ones too: the direct vend path creates its certificate ACTIVE, so the crash window
    // before it is recorded leaves an ACTIVE certificate with no thing and no policy (it could do
    // nothing); the checks below (unattached, a device's key) attribute it before it is deleted.
    if (status === "PENDING_ACTIVATION" || known.certificates.has(certificateId)) continue;
    const certificate = await deps.iot.inspectCertificate(certificateId);
    if (!certificate || certificate.things.length > 0 || certificate.policies.length > 0) continue;
    const described = await deps.iot.describeCertificate(certificateId);
    let serialNumber: string | undefined;
    try {
      serialNumber = described
        ? known.keys.get(readCertificate(described.certificatePem).publicKeyFingerprint)
        : undefined;
    } catch {
      continue;
    }
    if (!serialNumber) continue;
    const finding: Finding = {
      kind: "orphan-certificate",
      serialNumber,
      certificateId,
      action: "delete",
      repaired: !dryRun,
    };
    if (!dryRun) {
      try {
        await deps.iot.deleteUnattachedCertificate(certificateId);
      } catch (error) {
        finding.repaired = false;
        finding.error = describeError(error);
      }
    }
    findings.push(finding);
  }
  return findings;
}
