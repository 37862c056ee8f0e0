import * as z from "zod/mini";
import { productKeySchema, serialNumberSchema } from "../registry/model.ts";

/** Largest vend request body accepted (bytes). */
export const MAX_VEND_BODY_BYTES = 16 * 1024;

/** The body of `POST /v1/certificates` (documented in openapi.yaml). */
export const vendRequestSchema = z
  .strictObject({
    serialNumber: serialNumberSchema,
    productKey: productKeySchema,
    /** Milliseconds since the epoch when the device signed the request. */
    timestamp: z.int().check(z.positive()),
    /** Single-use random value, 16-64 URL-safe characters. */
    nonce: z
      .string()
      .check(z.regex(/^[A-Za-z0-9_-]{16,64}$/, "16-64 characters: letters, digits, '_' or '-'")),
    keyMode: z._default(z.enum(["csr", "server"]), "csr"),
    csr: z.optional(z.string().check(z.minLength(1), z.maxLength(12 * 1024))),
    /** Lowercase hex HMAC-SHA256 of the canonical content (see credentials/vend-signature.ts). */
    signature: z.string().check(z.regex(/^[0-9a-fA-F]{64}$/, "64 hex characters")),
  })
  .check(
    z.superRefine((value, ctx) => {
      if (value.keyMode === "csr" && value.csr === undefined) {
        ctx.addIssue({ code: "custom", path: ["csr"], message: "required when keyMode is csr" });
      }
      if (value.keyMode === "server" && value.csr !== undefined) {
        ctx.addIssue({ code: "custom", path: ["csr"], message: "not allowed when keyMode is server" });
      }
    }),
  );

export type VendRequest = z.infer<typeof vendRequestSchema>;

export type VendResult = {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  thingName: string;
  /** The root CA that signs the MQTT endpoint's server certificate (pin it on the device). */
  rootCaPem: string;
  mqttEndpoint: string;
  /** Only in server-key mode. */
  privateKeyPem?: string;
  /** True when this answers a retry of an earlier successful request (same CSR key). */
  replayed: boolean;
};
