import type { CertificateRecord } from "#local/iot/index.ts";

/** The JITR event topic of a CA: `$aws/events/certificates/registered/{caCertificateId}`. */
export const registrationEventTopic = (caCertificateId: string) =>
  `$aws/events/certificates/registered/${caCertificateId}`;

/** The event AWS IoT Core publishes when a PENDING_ACTIVATION certificate connects (JITR). */
export type CertificateRegisteredEvent = {
  certificateId: string;
  caCertificateId: string;
  /** When the event was published, milliseconds since the epoch. */
  timestamp: number;
  certificateStatus: string;
  awsAccountId: string;
  /** When the certificate was registered, epoch milliseconds as a string (documented as a string). */
  certificateRegistrationTimestamp: string;
};

/** The registration event of an auto-registered certificate, as published on each connection attempt. */
export function certificateRegisteredEvent(
  certificate: CertificateRecord & { caCertificateId: string },
  awsAccountId: string,
  now: number,
): CertificateRegisteredEvent {
  return {
    certificateId: certificate.certificateId,
    caCertificateId: certificate.caCertificateId,
    timestamp: now,
    certificateStatus: certificate.status,
    awsAccountId,
    certificateRegistrationTimestamp: String(certificate.creationDate),
  };
}
