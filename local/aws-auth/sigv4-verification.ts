import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { LocalAwsCredentials } from "./local-aws-credentials.ts";

/** How far a request's `X-Amz-Date` may be from the server's clock (AWS allows 15 minutes). */
export const SIGNATURE_WINDOW_MS = 15 * 60 * 1000;

/** The request as the server received it: method, raw target (`/path?query`), headers, body. */
export type SignedRequest = {
  method: string;
  /** `req.url` as sent: the path (percent-encoded once) and the raw query string. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
};

/** Why a request was refused, with the code and message AWS answers (HTTP 403). */
export type SignatureRejection = {
  code: "MissingAuthenticationTokenException" | "UnrecognizedClientException" | "InvalidSignatureException";
  message: string;
};

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/**
 * Verifies an AWS Signature Version 4 `Authorization` header against the one key pair the local
 * stack accepts: recomputes the canonical request from what was received (signed headers only,
 * path and query URI-encoded as the SDK and the aws CLI do for every service but S3, the body's
 * SHA-256), derives the signing key from the secret and the credential scope, and compares the
 * signatures in constant time. Returns undefined when the request is authentic.
 */
export function verifySignature(
  request: SignedRequest,
  credentials: LocalAwsCredentials,
  nowMs: number,
): SignatureRejection | undefined {
  const authorization = header(request.headers, "authorization");
  if (!authorization) {
    return { code: "MissingAuthenticationTokenException", message: "Missing Authentication Token" };
  }
  const parsed = AUTHORIZATION.exec(authorization.trim());
  const [accessKeyId, date, region, service, terminator, ...extra] = (parsed?.[1] ?? "").split("/");
  if (
    !parsed ||
    !accessKeyId ||
    !date ||
    !region ||
    !service ||
    terminator !== "aws4_request" ||
    extra.length
  ) {
    return {
      code: "InvalidSignatureException",
      message:
        "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' (AWS4-HMAC-SHA256).",
    };
  }
  if (!constantTimeEqual(accessKeyId, credentials.accessKeyId)) {
    return {
      code: "UnrecognizedClientException",
      message: "The security token included in the request is invalid.",
    };
  }
  const amzDate = header(request.headers, "x-amz-date") ?? "";
  const signedAt = parseAmzDate(amzDate);
  if (signedAt === undefined || !amzDate.startsWith(date)) {
    return {
      code: "InvalidSignatureException",
      message: "The request must carry X-Amz-Date matching its credential scope.",
    };
  }
  if (Math.abs(nowMs - signedAt) > SIGNATURE_WINDOW_MS) {
    return {
      code: "InvalidSignatureException",
      message: `Signature expired: ${amzDate} is outside the 15 minute window of the server's time.`,
    };
  }
  const signedHeaders = parsed[2] ?? "";
  const headerNames = signedHeaders.split(";");
  if (!headerNames.includes("host")) {
    return { code: "InvalidSignatureException", message: "The host header must be signed." };
  }
  const payloadHash = createHash("sha256").update(request.body).digest("hex");
  const claimedHash = header(request.headers, "x-amz-content-sha256");
  if (claimedHash !== undefined && claimedHash !== payloadHash) {
    return {
      code: "InvalidSignatureException",
      message: "The x-amz-content-sha256 header does not match the body.",
    };
  }
  const [rawPath = "/", rawQuery = ""] = splitOnce(request.url, "?");
  const query = canonicalQuery(rawQuery);
  if (query === undefined) {
    return { code: "InvalidSignatureException", message: "The query string is not valid percent-encoding." };
  }
  const canonicalRequest = [
    request.method.toUpperCase(),
    canonicalPath(rawPath),
    query,
    `${headerNames.map((name) => `${name}:${canonicalHeaderValue(request.headers[name])}`).join("\n")}\n`,
    signedHeaders,
    payloadHash,
  ].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
  let key: Buffer = hmac(`AWS4${credentials.secretAccessKey}`, date);
  for (const part of [region, service, "aws4_request"]) key = hmac(key, part);
  const expected = hmac(key, stringToSign).toString("hex");
  if (!constantTimeEqual(expected, parsed[3] ?? "")) {
    return {
      code: "InvalidSignatureException",
      message:
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
    };
  }
  return undefined;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

/** Trimmed, inner runs of spaces collapsed; repeated headers joined by commas. */
function canonicalHeaderValue(value: string | string[] | undefined): string {
  const values = Array.isArray(value) ? value : [value ?? ""];
  return values.map((v) => v.trim().replace(/\s+/g, " ")).join(",");
}

/** The path normalized (no empty, `.` or `..` segments) and encoded again, as signers do. */
function canonicalPath(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const trailing = segments.length > 0 && rawPath.endsWith("/") ? "/" : "";
  return `/${segments.map(escapeUri).join("/")}${trailing}`;
}

/**
 * Parameters decoded, encoded the RFC 3986 way, sorted by key then value; undefined when the
 * query is not valid percent-encoding.
 */
function canonicalQuery(rawQuery: string): string | undefined {
  const pairs: Array<readonly [string, string]> = [];
  for (const pair of rawQuery.split("&")) {
    if (pair === "") continue;
    const [key = "", value = ""] = splitOnce(pair, "=");
    try {
      pairs.push([escapeUri(decodeURIComponent(key)), escapeUri(decodeURIComponent(value))]);
    } catch {
      return undefined;
    }
  }
  return pairs
    .filter(([key]) => key !== "X-Amz-Signature")
    .sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join("&");
}

const escapeUri = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + separator.length)];
}

function parseAmzDate(text: string): number | undefined {
  const m = AMZ_DATE.exec(text);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(ms) ? undefined : ms;
}

const sha256Hex = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data, "utf8").digest();

function constantTimeEqual(a: string, b: string): boolean {
  const left = createHash("sha256").update(a).digest();
  const right = createHash("sha256").update(b).digest();
  return timingSafeEqual(left, right) && a === b;
}
