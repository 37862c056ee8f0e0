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

/**
 * A certificate with the things and policies attached to it; `policies` also holds those its
 * things inherit from their thing groups (the direct provisioning path grants through a group).
 */
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
  /**
   * Creates a certificate from a CSR: INACTIVE (activated only when the whole flow succeeded), or
   * ACTIVE with `setAsActive` where the flow's order keeps that safe (the direct path: a
   * certificate with no thing and no policy can do nothing, and permissions come after the commit).
   */
  createCertificateFromCsr(csrPem: string, options?: { setAsActive?: boolean }): Promise<CreatedCertificate>;
  /** Creates a certificate with a server-made key pair; INACTIVE unless `setAsActive` (as above). */
  createKeysAndCertificate(options?: {
    setAsActive?: boolean;
  }): Promise<CreatedCertificate & { privateKeyPem: string }>;
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
  /**
   * Attaches a certificate to a thing (AttachThingPrincipal; idempotent). Without the ARN the
   * adapter reads it (one DescribeCertificate more).
   */
  attachThingPrincipal(thingName: string, certificateId: string, certificateArn?: string): Promise<void>;
  /**
   * Puts a thing into a static thing group that carries `policyName` (AddThingToThingGroup). The
   * group is created and the policy attached to it (AttachPolicy on the group's ARN) once per
   * group and instance. Idempotent.
   */
  addThingToPolicyGroup(thingName: string, thingGroupName: string, policyName: string): Promise<void>;
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
