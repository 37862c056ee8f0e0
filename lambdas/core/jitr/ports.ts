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

/**
 * What became of a certificate's registration, recorded by certificate id so that a repeated
 * event (the device reconnects while its certificate waits in the queue) is dropped with one
 * registry write instead of a DescribeCertificate (10 TPS).
 */
export type LedgerSettlement = {
  /** The outcome (activated, already-active, ignored, rejected:<reason>), for operators. */
  outcome: string;
  /** When it was settled (ms); events published before it are repeats of the settled registration. */
  settledAt: number;
  /** When the record may be forgotten (ms): after the queue's retention no repeat can be left. */
  expiresAt: number;
};

/** What {@link RegistrationLedger.begin} found. */
export type LedgerBegin = { state: "taken" } | { state: "leased"; leaseUntil: number } | { state: "settled" };

/** The JITR registrations by certificate id (an item per certificate in the registry table). */
export interface RegistrationLedger {
  /**
   * Takes the certificate for one message (`taken`), unless another message holds a live lease
   * (`leased`, with when it ends) or the certificate was settled after `eventTimestamp` (`settled`:
   * the event repeats a settled registration). One conditional write (a read only when it fails);
   * a certificate registered again after it was settled (an event newer than the settlement) is
   * taken again.
   */
  begin(
    certificateId: string,
    lease: { owner: string; now: number; leaseMs: number; eventTimestamp: number },
  ): Promise<LedgerBegin>;
  /** Records the outcome, if `owner` still holds the lease. */
  settle(certificateId: string, owner: string, settlement: LedgerSettlement): Promise<void>;
  /** Gives the lease up (the registration did not finish, or its outcome is not final). */
  release(certificateId: string, owner: string): Promise<void>;
}

/** The queue a JITR message came from: a failed message is made visible again after a delay. */
export interface RegistrationQueue {
  /** ChangeMessageVisibility: the message returns after `delaySeconds` (0–43,200). */
  retryLater(receiptHandle: string, delaySeconds: number): Promise<void>;
}
