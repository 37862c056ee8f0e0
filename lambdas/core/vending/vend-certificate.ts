import { deriveDeviceSecret } from "#credentials/derived-secret.ts";
import { verifyVendSignature } from "#credentials/vend-signature.ts";
import {
  AuthenticationError,
  ConflictError,
  DependencyUnavailableError,
  DeviceNotAllowedError,
  DomainError,
  ValidationError,
} from "../errors.ts";
import type { Logger } from "../logger.ts";
import { readCertificate } from "../pki/certificate-reader.ts";
import { parseCsr } from "../pki/csr.ts";
import type { Device, Product } from "../registry/model.ts";
import type { NonceStore, Registry, SecretStore } from "../registry/ports.ts";
import { openSecret } from "../registry/sealed-secret.ts";
import { takeClaim } from "../registry/take-claim.ts";
import type { CreatedCertificate, IotProvisioning, TemplateSource } from "./ports.ts";
import type { VendRequest, VendResult } from "./vend-request.ts";

export type VendConfig = {
  /** How far a request's timestamp may be from the server clock (ms). */
  timestampWindowMs: number;
  /** How long a claim blocks other flows on the same device (ms); longer than the Lambda timeout. */
  claimTtlMs: number;
  /** The root CA of the MQTT endpoint's server certificate, returned to devices. */
  serverRootCaPem: string;
};

export type VendDeps = {
  registry: Registry;
  nonces: NonceStore;
  secrets: SecretStore;
  iot: IotProvisioning;
  templates: TemplateSource;
  config: VendConfig;
  logger: Logger;
  clock?: () => number;
};

export const defaultVendConfig = { timestampWindowMs: 5 * 60_000, claimTtlMs: 2 * 60_000 } as const;

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

  if (device.status === "provisioned") {
    if (csr && device.certificateId && device.publicKeyFingerprint === csr.publicKeyFingerprint) {
      return replayProvisioned(deps, device);
    }
    if (product.reprovision === "never") {
      throw new ConflictError("ALREADY_PROVISIONED", "This device is already provisioned.");
    }
  }

  const claim = await takeClaim(deps, device, {
    publicKeyFingerprint: csr?.publicKeyFingerprint ?? "server-key",
    ttlMs: deps.config.claimTtlMs,
    now,
  });

  const log = { serialNumber, productKey };
  let certificate: (CreatedCertificate & { privateKeyPem?: string }) | undefined;
  let thingName = serialNumber;
  try {
    certificate = request.csr
      ? await deps.iot.createCertificateFromCsr(request.csr)
      : await deps.iot.createKeysAndCertificate();
    await deps.registry.recordClaimCertificate(serialNumber, claim.id, certificate.certificateId);
    const template = await deps.templates.load(product.templateName);
    const registered = await deps.iot.registerThing(
      template.body,
      template.pick({
        SerialNumber: serialNumber,
        ProductKey: productKey,
        CertificateId: certificate.certificateId,
      }),
    );
    thingName = registered.thingArn?.split("/").pop() ?? serialNumber;
    const fingerprint =
      csr?.publicKeyFingerprint ?? readCertificate(certificate.certificatePem).publicKeyFingerprint;
    const committed = await deps.registry.completeClaim(serialNumber, claim.id, {
      certificateId: certificate.certificateId,
      thingName,
      publicKeyFingerprint: fingerprint,
      at: new Date(now).toISOString(),
    });
    if (!committed)
      throw new ConflictError("PROVISIONING_IN_PROGRESS", "The provisioning claim expired; retry.");
  } catch (error) {
    deps.logger.warn("vend failed, undoing", {
      ...log,
      step: failedStep(certificate),
      error: describe(error),
    });
    await undo(deps, device, claim.id, certificate?.certificateId, thingName);
    throw error;
  }

  await deps.iot.setCertificateStatus(certificate.certificateId, "ACTIVE");
  if (
    device.status === "provisioned" &&
    device.certificateId &&
    device.certificateId !== certificate.certificateId
  ) {
    await deps.iot.destroyCertificate(device.certificateId).catch((error: unknown) =>
      deps.logger.error("could not remove the replaced certificate", {
        ...log,
        certificateId: device.certificateId,
        error: describe(error),
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
  const secret = product ? await signingSecret(deps, product, device, request.serialNumber) : undefined;
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
 * The secret a device signs with: its own (sealed in the registry), derived, or the product's.
 * Stored data that cannot yield a secret (a tampered seal, a product secret that is not base64)
 * is a server-side fault: 503, logged without the data.
 */
async function signingSecret(
  deps: VendDeps,
  product: Product,
  device: Device | undefined,
  serialNumber: string,
): Promise<string | undefined> {
  try {
    if (device?.sealedSecret && device.productKey === product.productKey) {
      return openSecret(device.sealedSecret, await deps.secrets.getRegistryKey(), serialNumber);
    }
    const productSecret = await deps.secrets.getProductSecret(product.productKey);
    if (productSecret === undefined) return undefined;
    return product.authMode === "device-secret"
      ? deriveDeviceSecret(productSecret, serialNumber)
      : productSecret;
  } catch (error) {
    if (error instanceof DomainError) throw error;
    deps.logger.error("cannot compute the signing secret", {
      serialNumber,
      productKey: product.productKey,
      error: describe(error),
    });
    throw new DependencyUnavailableError("The device's signing secret is unavailable.");
  }
}

/** A retry after a lost response: answer with the committed certificate, re-activating it if needed. */
async function replayProvisioned(deps: VendDeps, device: Device): Promise<VendResult> {
  const certificateId = device.certificateId!;
  const current = await deps.iot.describeCertificate(certificateId);
  if (!current || current.status === "REVOKED") {
    throw new DeviceNotAllowedError("revoked");
  }
  if (current.status !== "ACTIVE") await deps.iot.setCertificateStatus(certificateId, "ACTIVE");
  return {
    certificateId,
    certificateArn: current.certificateArn,
    certificatePem: current.certificatePem,
    thingName: device.thingName ?? device.serialNumber,
    rootCaPem: deps.config.serverRootCaPem,
    mqttEndpoint: await deps.iot.getDataEndpoint(),
    replayed: true,
  };
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
  thingName: string,
): Promise<void> {
  try {
    if (certificateId) await deps.iot.destroyCertificate(certificateId);
    if (device.status !== "provisioned") await deps.iot.deleteThingIfUnused(thingName);
    await deps.registry.releaseClaim(device.serialNumber, claimId);
  } catch (error) {
    deps.logger.error("undo incomplete; the claim expires and the next attempt cleans up", {
      serialNumber: device.serialNumber,
      certificateId,
      error: describe(error),
    });
  }
}

function failedStep(certificate: CreatedCertificate | undefined): string {
  return certificate ? "after-certificate" : "create-certificate";
}

function describe(error: unknown): string {
  if (error instanceof DomainError) return `${error.name}: ${error.code}`;
  return error instanceof Error ? error.name : "unknown";
}
