import { CertificateIssuer } from "../pki/issue.ts";
import { createKeyPair } from "../pki/keys.ts";
import type { CaRegistrationConfig, CaRegistry, DescribedCaCertificate } from "./ports.ts";

/** Validity of the throw-away verification certificate (days). */
const VERIFICATION_DAYS = 1;

/** A CA to register: its certificate and unencrypted private key, PEM. */
export type RegisterCaRequest = {
  caCertPem: string;
  caPrivateKeyPem: string;
  /** JITP: attach this template (and the role AWS IoT runs it with) to the CA. */
  registrationConfig?: CaRegistrationConfig;
};

/** The CA id (SHA-256 of its DER), whether this call registered it, and how AWS IoT describes it. */
export type RegisterCaResult = {
  caCertificateId: string;
  /** False when the CA was registered before (nothing was changed). */
  registered: boolean;
  description?: DescribedCaCertificate;
};

/**
 * Registers a CA with AWS IoT for JITR / JITP: proves possession of the CA key with a verification
 * certificate whose CN is the account's registration code, then registers the CA active and with
 * auto-registration of the device certificates it signs. Idempotent: a CA that is already
 * registered (same certificate id, the SHA-256 of its DER) is reported, not registered again.
 * Throws InvalidCertificateError / InvalidKeyError for a bad CA or a key that is not the CA's.
 */
export async function registerCaCertificate(
  deps: { iot: CaRegistry },
  request: RegisterCaRequest,
): Promise<RegisterCaResult> {
  const issuer = await CertificateIssuer.create({
    certPem: request.caCertPem,
    privateKeyPem: request.caPrivateKeyPem,
  });
  const caCertificateId = issuer.caCertificateId;
  const existing = await deps.iot.describeCaCertificate(caCertificateId);
  if (existing) return { caCertificateId, registered: false, description: existing };

  const registrationCode = await deps.iot.getRegistrationCode();
  const keys = await createKeyPair("EC-P256");
  const verification = await issuer.issue({
    subjectPublicKey: keys.publicKeyPem,
    subject: { commonName: registrationCode },
    days: VERIFICATION_DAYS,
  });
  const { registered } = await deps.iot.registerCaCertificate({
    caCertificatePem: issuer.caCertPem,
    verificationCertificatePem: verification.certificatePem,
    ...(request.registrationConfig ? { registrationConfig: request.registrationConfig } : {}),
  });
  const description = await deps.iot.describeCaCertificate(caCertificateId);
  return { caCertificateId, registered, ...(description ? { description } : {}) };
}
