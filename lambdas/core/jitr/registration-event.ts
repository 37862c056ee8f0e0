import * as z from "zod/mini";

const certificateIdSchema = z.string().check(z.regex(/^[0-9a-f]{64}$/, "64 lowercase hex characters"));

/**
 * The event AWS IoT Core publishes on `$aws/events/certificates/registered/{caCertificateId}` when
 * a device connects with a certificate signed by a CA registered with auto-registration (JITR).
 * It repeats on every connection of a PENDING_ACTIVATION certificate and may arrive twice. Unknown
 * extra fields are kept (AWS may add some); `certificateRegistrationTimestamp` is documented as a
 * string but seen as a number or null, so any of those is accepted.
 */
export const registrationEventSchema = z.looseObject({
  certificateId: certificateIdSchema,
  caCertificateId: certificateIdSchema,
  /** Milliseconds since the epoch. */
  timestamp: z.number(),
  /** `PENDING_ACTIVATION` for a newly auto-registered certificate. */
  certificateStatus: z.string().check(z.minLength(1)),
  awsAccountId: z.string().check(z.minLength(1)),
  certificateRegistrationTimestamp: z.optional(z.union([z.string(), z.number(), z.null()])),
});

/** A parsed JITR registration event. */
export type RegistrationEvent = z.infer<typeof registrationEventSchema>;
