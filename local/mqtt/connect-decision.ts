import { randomUUID } from "node:crypto";
import { type ParsedCertificate, parseCertificate, verifySignedBy } from "#core/pki/index.ts";
import { toPem } from "#core/pki/pem.ts";
import {
  type CertificateParameters,
  evaluateTemplate,
  TemplateError,
} from "#core/provisioning-template/index.ts";
import {
  applyProvisioningPlan,
  type CaCertificateRecord,
  type CertificateRecord,
  type IotEmulator,
  IotServiceError,
} from "#local/iot/index.ts";
import type { DeviceAuthorizer, DeviceSession } from "./device-authorizer.ts";
import { clientArn } from "./policy-engine.ts";
import {
  type CertificateRegisteredEvent,
  certificateRegisteredEvent,
  registrationEventTopic,
} from "./registration-event.ts";

/** Why a connection was refused (and closed without CONNACK, as AWS IoT Core does). */
export type ConnectRefusal =
  | "no-certificate"
  | "malformed-certificate"
  | "certificate-expired"
  | "certificate-not-yet-valid"
  | "certificate-revoked"
  | "certificate-inactive"
  | "certificate-pending-activation"
  | "certificate-not-active"
  | "unknown-ca"
  | "ca-not-active"
  | "auto-registration-disabled"
  | "jitr-registered"
  | "jitp-provisioned"
  | "jitp-failed"
  | "not-authorized";

/** The decision about one MQTT CONNECT, with what the log line needs (never key material). */
export type ConnectDecision =
  | { outcome: "accepted"; session: DeviceSession; certificateId: string; thingName?: string }
  | {
      outcome: "refused";
      reason: ConnectRefusal;
      certificateId?: string;
      caCertificateId?: string;
      thingName?: string;
      /** A short explanation for the log (template errors, registry failures). */
      detail?: string;
    };

/** What decideConnect uses. */
export type ConnectDeps = {
  iot: IotEmulator;
  authorizer: DeviceAuthorizer;
  /** The `awsAccountId` of registration events. */
  accountId: string;
  /** Publishes a JITR registration event into the broker, and so into the rule engine. */
  publishEvent(topic: string, event: CertificateRegisteredEvent): Promise<void>;
  now?: () => number;
};

/** What the device presented: its client id and the DER of its certificate (absent: none). */
export type ConnectRequest = { clientId: string; certificateDer?: Uint8Array };

/**
 * Decides an MQTT CONNECT as AWS IoT Core does for X.509 client certificates:
 * - a registered ACTIVE certificate connects if its policies allow `iot:Connect` on
 *   `client/{clientId}`;
 * - a certificate not registered yet, signed by a registered CA that is ACTIVE with
 *   auto-registration: with a JITP registration config the template is run (thing, policy,
 *   ACTIVE certificate); otherwise (JITR) it is registered PENDING_ACTIVATION and the registration
 *   event published. Either way this first connection is refused; the device retries;
 * - a PENDING_ACTIVATION certificate publishes the event again and is refused;
 * - no certificate, REVOKED / INACTIVE certificates, unknown or inactive CAs are refused.
 */
export async function decideConnect(deps: ConnectDeps, request: ConnectRequest): Promise<ConnectDecision> {
  if (!request.certificateDer || request.certificateDer.length === 0) {
    return { outcome: "refused", reason: "no-certificate" };
  }
  let certificate: ParsedCertificate;
  try {
    certificate = await parseCertificate(toPem(request.certificateDer, "CERTIFICATE"));
  } catch {
    return { outcome: "refused", reason: "malformed-certificate" };
  }
  const now = (deps.now ?? Date.now)();
  const certificateId = certificate.id;
  if (certificate.notAfter.getTime() < now) {
    return { outcome: "refused", reason: "certificate-expired", certificateId };
  }
  if (certificate.notBefore.getTime() > now) {
    return { outcome: "refused", reason: "certificate-not-yet-valid", certificateId };
  }
  const known = deps.iot.state.certificate(certificateId);
  if (known) return decideKnown(deps, request, certificate, known, now);

  const ca = await findIssuingCa(deps, certificate);
  if (!ca) return { outcome: "refused", reason: "unknown-ca", certificateId };
  const caCertificateId = ca.certificateId;
  if (ca.status !== "ACTIVE") {
    return { outcome: "refused", reason: "ca-not-active", certificateId, caCertificateId };
  }
  if (ca.autoRegistrationStatus !== "ENABLE") {
    return { outcome: "refused", reason: "auto-registration-disabled", certificateId, caCertificateId };
  }
  if (isJitpCa(ca)) return provisionJustInTime(deps, certificate, ca);

  const { certificate: registered } = await deps.iot.registerCertificateFromCa(certificate.pem);
  if (registered.status !== "PENDING_ACTIVATION") {
    // Registered (and decided) by a concurrent connection in the meantime.
    return decideKnown(deps, request, certificate, registered, now);
  }
  await publishRegistrationEvent(deps, registered, now);
  return { outcome: "refused", reason: "jitr-registered", certificateId, caCertificateId };
}

async function decideKnown(
  deps: ConnectDeps,
  request: ConnectRequest,
  certificate: ParsedCertificate,
  record: CertificateRecord,
  now: number,
): Promise<ConnectDecision> {
  const certificateId = record.certificateId;
  switch (record.status) {
    case "ACTIVE":
      break;
    case "PENDING_ACTIVATION": {
      const ca = record.caCertificateId ? deps.iot.state.caCertificate(record.caCertificateId) : undefined;
      if (ca && isJitpCa(ca)) {
        // An earlier JITP attempt failed after registering the certificate: run the template again.
        return provisionJustInTime(deps, certificate, ca);
      }
      await publishRegistrationEvent(deps, record, now);
      return {
        outcome: "refused",
        reason: "certificate-pending-activation",
        certificateId,
        ...(record.caCertificateId ? { caCertificateId: record.caCertificateId } : {}),
      };
    }
    case "REVOKED":
      return { outcome: "refused", reason: "certificate-revoked", certificateId };
    case "INACTIVE":
      return { outcome: "refused", reason: "certificate-inactive", certificateId };
    default:
      return { outcome: "refused", reason: "certificate-not-active", certificateId };
  }
  const session: DeviceSession = {
    clientId: request.clientId,
    certificateId,
    certificateArn: record.certificateArn,
    sessionIdentifier: randomUUID(),
    subject: certificate.subject,
    issuer: certificate.issuer,
  };
  const decision = deps.authorizer.authorize(
    session,
    "iot:Connect",
    clientArn(deps.authorizer.scope, request.clientId),
  );
  const thing = decision.thingName === undefined ? {} : { thingName: decision.thingName };
  if (!decision.allowed) {
    return { outcome: "refused", reason: "not-authorized", certificateId, ...thing, detail: decision.reason };
  }
  return { outcome: "accepted", session, certificateId, ...thing };
}

/** JITP: evaluate the CA's template with the certificate's fields, register, apply. */
async function provisionJustInTime(
  deps: ConnectDeps,
  certificate: ParsedCertificate,
  ca: CaCertificateRecord,
): Promise<ConnectDecision> {
  const certificateId = certificate.id;
  const caCertificateId = ca.certificateId;
  const failed = (detail: string): ConnectDecision => ({
    outcome: "refused",
    reason: "jitp-failed",
    certificateId,
    caCertificateId,
    detail,
  });
  const templateBody = jitpTemplateBody(deps, ca);
  if (!templateBody) return failed("the CA's JITP provisioning template does not exist");
  let plan: ReturnType<typeof evaluateTemplate>;
  try {
    plan = evaluateTemplate(templateBody, {}, { certificate: certificateParameters(certificate) });
  } catch (error) {
    if (error instanceof TemplateError) return failed(error.message);
    throw error;
  }
  try {
    await deps.iot.registerCertificateFromCa(certificate.pem);
    const result = await applyProvisioningPlan(deps.iot.context, plan);
    return {
      outcome: "refused",
      reason: "jitp-provisioned",
      certificateId,
      caCertificateId,
      ...(result.thingName ? { thingName: result.thingName } : {}),
    };
  } catch (error) {
    if (error instanceof IotServiceError) return failed(`${error.name}: ${error.message}`);
    throw error;
  }
}

/** True when the CA provisions just in time: its registration config names a template. */
function isJitpCa(ca: CaCertificateRecord): boolean {
  return Boolean(ca.registrationConfig?.templateBody || ca.registrationConfig?.templateName);
}

/** The CA's JITP template body: inline, or the provisioning template it names (if that exists). */
function jitpTemplateBody(deps: ConnectDeps, ca: CaCertificateRecord): string | undefined {
  const config = ca.registrationConfig;
  if (config?.templateBody) return config.templateBody;
  return config?.templateName
    ? deps.iot.state.provisioningTemplate(config.templateName)?.templateBody
    : undefined;
}

/** The `AWS::IoT::Certificate::*` parameters of a certificate (fields it lacks are left out). */
function certificateParameters(certificate: ParsedCertificate): CertificateParameters {
  const { subject } = certificate;
  const parameters: CertificateParameters = { id: certificate.id };
  const fields = [
    "commonName",
    "country",
    "organization",
    "organizationalUnit",
    "distinguishedNameQualifier",
    "stateName",
    "serialNumber",
  ] as const;
  for (const field of fields) {
    const value = subject[field];
    if (value !== undefined) parameters[field] = value;
  }
  return parameters;
}

/** The registered CA whose key signed the certificate, if any. */
async function findIssuingCa(
  deps: ConnectDeps,
  certificate: ParsedCertificate,
): Promise<CaCertificateRecord | undefined> {
  for (const ca of deps.iot.state.listCaCertificates()) {
    if (await verifySignedBy(certificate.pem, ca.certificatePem).catch(() => false)) return ca;
  }
  return undefined;
}

async function publishRegistrationEvent(deps: ConnectDeps, record: CertificateRecord, now: number) {
  const caCertificateId = record.caCertificateId;
  if (!caCertificateId) return;
  const event = certificateRegisteredEvent({ ...record, caCertificateId }, deps.accountId, now);
  await deps.publishEvent(registrationEventTopic(caCertificateId), event);
}
