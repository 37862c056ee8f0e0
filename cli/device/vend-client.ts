import { randomBytes } from "node:crypto";
import { signVendRequest, type VendSignedFields } from "#credentials/vend-signature.ts";

export type VendCall = {
  apiUrl: string;
  serialNumber: string;
  productKey: string;
  /** The secret the device signs with (its own or derived secret, or the product secret). */
  secret: string;
  keyMode: "csr" | "server";
  csr?: string;
  timestamp?: number;
  nonce?: string;
  fetchImpl?: typeof fetch;
};

export type VendResponse = { status: number; headers: Headers; body: Record<string, unknown> };

/** Builds the signed JSON body a device sends to `POST /v1/certificates`. */
export function buildVendBody(call: Omit<VendCall, "apiUrl" | "fetchImpl">): Record<string, unknown> {
  const fields: VendSignedFields = {
    serialNumber: call.serialNumber,
    productKey: call.productKey,
    timestamp: call.timestamp ?? Date.now(),
    nonce: call.nonce ?? randomBytes(16).toString("base64url"),
    keyMode: call.keyMode,
    ...(call.csr === undefined ? {} : { csr: call.csr }),
  };
  return { ...fields, signature: signVendRequest(fields, call.secret) };
}

/** What a device does: sign the request and POST it. Returns status, headers and JSON body. */
export async function requestCertificate(call: VendCall): Promise<VendResponse> {
  const response = await (call.fetchImpl ?? fetch)(new URL("/v1/certificates", call.apiUrl), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(buildVendBody(call)),
  });
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { error: { code: "NON_JSON_RESPONSE", message: text.slice(0, 200) } };
  }
  return { status: response.status, headers: response.headers, body };
}
