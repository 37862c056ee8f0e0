/** A certificate as AWS IoT returns it on creation. */
export type CreatedCertificate = {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
};

export type CertificateStatus =
  | "ACTIVE"
  | "INACTIVE"
  | "REVOKED"
  | "PENDING_TRANSFER"
  | "PENDING_ACTIVATION"
  | "REGISTER_INACTIVE";

/** A certificate with the things and policies attached to it. */
export type CertificateAttachments = {
  certificateId: string;
  certificateArn: string;
  status: CertificateStatus;
  things: string[];
  policies: string[];
};

/**
 * The AWS IoT operations the provisioning flows need. Adapters translate SDK errors into
 * DependencyThrottledError / DependencyUnavailableError / ValidationError.
 */
export interface IotProvisioning {
  /** Creates an INACTIVE certificate from a CSR (activated only when the whole flow succeeded). */
  createCertificateFromCsr(csrPem: string): Promise<CreatedCertificate>;
  /** Creates an INACTIVE certificate with a server-made key pair. */
  createKeysAndCertificate(): Promise<CreatedCertificate & { privateKeyPem: string }>;
  /** RegisterThing with a template body and its parameters. */
  registerThing(templateBody: string, parameters: Record<string, string>): Promise<{ thingArn?: string }>;
  describeCertificate(
    certificateId: string,
  ): Promise<{ certificatePem: string; certificateArn: string; status: CertificateStatus } | undefined>;
  /**
   * A certificate's status and what is attached to it (things, policies); undefined when it does
   * not exist. The flows use it to check that a provisioning is complete.
   */
  inspectCertificate(certificateId: string): Promise<CertificateAttachments | undefined>;
  setCertificateStatus(certificateId: string, status: "ACTIVE" | "INACTIVE" | "REVOKED"): Promise<void>;
  /**
   * Undoes a certificate: detaches its policies and things, revokes and deletes it. Idempotent:
   * a certificate that is already gone is fine.
   */
  destroyCertificate(certificateId: string): Promise<void>;
  /** Creates a thing with attributes (no certificate). Idempotent: an existing thing is left as it is. */
  createThing(thingName: string, attributes: Record<string, string>): Promise<void>;
  /** A thing's attributes; undefined when there is no thing of that name. */
  describeThing(thingName: string): Promise<{ attributes: Record<string, string> } | undefined>;
  /** Deletes a thing if no principal is attached to it any more. Idempotent. */
  deleteThingIfUnused(thingName: string): Promise<void>;
  /** The MQTT data endpoint devices connect to. */
  getDataEndpoint(): Promise<string>;
}

/** A provisioning template as the flows use it. */
export type LoadedTemplate = {
  name: string;
  body: string;
  /** Keeps only the parameters the template declares (RegisterThing rejects unknown ones). */
  pick(parameters: Record<string, string>): Record<string, string>;
};

/** Provisioning templates by name (the files in templates/, bundled into the Lambda). */
export interface TemplateSource {
  load(name: string): Promise<LoadedTemplate>;
}
