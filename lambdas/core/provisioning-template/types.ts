/** What AWS IoT does when a resource the template declares already exists. */
export type OverrideAction = "DO_NOTHING" | "REPLACE" | "FAIL" | "MERGE";

/**
 * Values a JITP template can read from the device certificate, as the parameters
 * `AWS::IoT::Certificate::Id`, `::CommonName`, `::Country`, `::Organization`,
 * `::OrganizationalUnit`, `::DistinguishedNameQualifier`, `::StateName` and `::SerialNumber`.
 */
export type CertificateParameters = {
  id: string;
  commonName?: string;
  country?: string;
  organization?: string;
  organizationalUnit?: string;
  distinguishedNameQualifier?: string;
  stateName?: string;
  serialNumber?: string;
};

/** The thing a template creates (or updates, as its OverrideSettings say). */
export type PlannedThing = {
  logicalId: string;
  thingName: string;
  attributePayload?: Record<string, string>;
  thingTypeName?: string;
  thingGroups?: string[];
  billingGroup?: string;
  overrideSettings: Record<string, OverrideAction>;
};

/** The certificate a template registers or activates; exactly one source is set. */
export type PlannedCertificate = {
  logicalId: string;
  certificateId?: string;
  certificateSigningRequest?: string;
  certificatePem?: string;
  caCertificatePem?: string;
  /** `ACTIVE` (the default) or `INACTIVE`. */
  status: string;
  overrideSettings: Record<string, OverrideAction>;
};

/**
 * A policy to attach to the certificate: an existing policy by name, or a new one from a document
 * (compact JSON; AWS IoT names it after a hash of the document).
 */
export type PlannedPolicy = { logicalId: string; policyName?: string; policyDocument?: string };

/** Everything an evaluated template asks AWS IoT to do. No side effects have happened yet. */
export type ProvisioningPlan = {
  /** The value of every declared parameter: given, from the certificate, or its Default. */
  parameters: Record<string, string>;
  thing?: PlannedThing;
  certificate?: PlannedCertificate;
  policies: PlannedPolicy[];
  /** Fleet provisioning: the flat configuration sent back to the device. */
  deviceConfiguration?: Record<string, string>;
};
