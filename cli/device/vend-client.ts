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

/** Statuses a device retries: throttled, unavailable, gateway timeout, and a flow in progress. */
const RETRYABLE = new Set([409, 429, 503, 504]);

export type VendRetryOptions = {
  /** Attempts in all (default 5). */
  maxAttempts?: number;
  /** A Retry-After longer than this (s) is not waited for: the answer is returned (default 300). */
  maxWaitSeconds?: number;
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Told before each wait. */
  onRetry?: (status: number, waitMs: number, attempt: number) => void;
};

/**
 * What a well-behaved device does: vend, and on 429 / 503 / 504 (or 409 with Retry-After: its own
 * flow in progress) wait what Retry-After says plus up to 1 s of jitter (never less), then send a
 * newly signed request (fresh timestamp and nonce unless the call fixes them). Without Retry-After
 * it backs off exponentially (1, 2, 4 … s, at most 30, with the same jitter). Bounded: after
 * `maxAttempts` the last answer is returned. `attempts` counts the requests sent.
 */
export async function vendWithRetries(
  call: VendCall,
  options: VendRetryOptions = {},
): Promise<VendResponse & { attempts: number }> {
  const maxAttempts = options.maxAttempts ?? 5;
  const maxWaitSeconds = options.maxWaitSeconds ?? 300;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    const response = await requestCertificate(call);
    const header = response.headers.get("retry-after");
    const retryAfter = header !== null && /^\d+$/.test(header.trim()) ? Number(header.trim()) : undefined;
    const retryable = RETRYABLE.has(response.status) && (response.status !== 409 || retryAfter !== undefined);
    if (!retryable || attempt >= maxAttempts) return { ...response, attempts: attempt };
    const seconds = retryAfter ?? Math.min(30, 2 ** (attempt - 1));
    if (seconds > maxWaitSeconds) return { ...response, attempts: attempt };
    const waitMs = seconds * 1000 + Math.floor(random() * 1000);
    options.onRetry?.(response.status, waitMs, attempt);
    await sleep(waitMs);
  }
}
