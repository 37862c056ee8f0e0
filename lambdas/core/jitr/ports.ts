import type { CertificateStatus, IotProvisioning } from "../vending/ports.ts";

/** A device certificate as DescribeCertificate returns it, with the CA that signed it. */
export type DescribedCertificate = {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  status: CertificateStatus;
  /** Set for certificates registered with (or auto-registered from) a registered CA. */
  caCertificateId?: string;
};

/**
 * The AWS IoT operations the JITR flow needs: the provisioning operations it shares with vending,
 * plus a describe that names the CA and an undo that leaves the certificate itself alone (it is
 * the device's: revoking or deleting it would brick a device that may retry).
 */
export interface JitrIot
  extends Pick<
    IotProvisioning,
    | "registerThing"
    | "describeThing"
    | "createThing"
    | "attachThingPrincipal"
    | "addThingToPolicyGroup"
    | "setCertificateStatus"
    | "deleteThingIfUnused"
    | "destroyCertificate"
    | "inspectCertificate"
  > {
  describeCertificate(certificateId: string): Promise<DescribedCertificate | undefined>;
  /**
   * Detaches every policy and thing attached to the certificate; its status is left as it is.
   * Idempotent: a certificate that is gone or has nothing attached is fine.
   */
  detachCertificate(certificateId: string): Promise<void>;
}

/** A registered CA certificate as DescribeCACertificate returns it. */
export type DescribedCaCertificate = {
  certificateId: string;
  certificateArn: string;
  status: "ACTIVE" | "INACTIVE";
  autoRegistrationStatus: "ENABLE" | "DISABLE";
  /** The JITP template body attached to the CA, when there is one. */
  templateBody?: string;
};

/** JITP: the provisioning template AWS IoT runs for certificates of this CA on first connect. */
export type CaRegistrationConfig = { templateBody: string; roleArn: string };

/** The AWS IoT operations that register a CA (for JITR and JITP). */
export interface CaRegistry {
  /** The account's registration code: the common name a CA's verification certificate must carry. */
  getRegistrationCode(): Promise<string>;
  /**
   * RegisterCACertificate, active and with auto-registration. Returns false (and changes nothing)
   * when this CA is already registered.
   */
  registerCaCertificate(request: {
    caCertificatePem: string;
    verificationCertificatePem: string;
    registrationConfig?: CaRegistrationConfig;
  }): Promise<{ registered: boolean }>;
  describeCaCertificate(caCertificateId: string): Promise<DescribedCaCertificate | undefined>;
}
