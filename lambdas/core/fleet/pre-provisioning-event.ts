import * as z from "zod/mini";

const certificateIdSchema = z.string().check(z.regex(/^[0-9a-f]{64}$/, "64 lowercase hex characters"));

/**
 * What AWS IoT sends the pre-provisioning hook of a fleet provisioning template when a device
 * publishes to `$aws/provisioning-templates/{templateName}/provision/json` (payload version
 * 2020-04-01). `parameters` are the ones the device put in its request (strings); the certificate
 * is the new one AWS IoT just created for the device, the claim certificate the one it connected
 * with. Unknown extra fields are kept (AWS may add some).
 */
export const preProvisioningEventSchema = z.looseObject({
  /** The claim certificate the device is connected with. */
  claimCertificateId: certificateIdSchema,
  /** The certificate AWS IoT created for the device (CreateKeysAndCertificate / CreateCertificateFromCsr). */
  certificateId: certificateIdSchema,
  certificatePem: z.string().check(z.minLength(1)),
  /** `arn:{partition}:iot:{region}:{account}:provisioningtemplate/{templateName}`. */
  templateArn: z.string().check(z.minLength(1)),
  /** The MQTT client id of the connection. */
  clientId: z.string().check(z.minLength(1)),
  /** The `parameters` of the device's provision request (absent or empty when it sent none). */
  parameters: z._default(z.record(z.string(), z.string()), {}),
});

/** A parsed pre-provisioning hook input. */
export type PreProvisioningEvent = z.infer<typeof preProvisioningEventSchema>;

/**
 * What the hook answers. Provisioning goes on only with `allowProvisioning: true`;
 * `parameterOverrides` are merged into the request's parameters before the template runs.
 */
export type PreProvisioningResponse =
  | { allowProvisioning: true; parameterOverrides: Record<string, string> }
  | { allowProvisioning: false };

/** The answer for anything that is not explicitly allowed. */
export const DENY_PROVISIONING: PreProvisioningResponse = Object.freeze({ allowProvisioning: false });
