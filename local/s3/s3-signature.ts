import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { LocalAwsCredentials } from "../aws-auth/local-aws-credentials.ts";

/**
 * SigV4 for the local S3, as S3 defines it
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html and
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html): the same key pair
 * the rest of the local AWS endpoint accepts (`local/aws-auth/sigv4-verification.ts`), with S3's
 * differences: the path is encoded once (not normalized, not encoded twice), the payload hash is
 * whatever `x-amz-content-sha256` says (`UNSIGNED-PAYLOAD`, the `STREAMING-*` values of aws-chunked
 * uploads, or the body's SHA-256, which must then match), and presigned URLs carry the signature
 * in the query (`X-Amz-Signature`, payload `UNSIGNED-PAYLOAD`, valid for `X-Amz-Expires` seconds).
 * The per-chunk signatures of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` uploads are not checked (the
 * seed signature, over the headers, is).
 */

/** How far a header-signed request's X-Amz-Date may be from the server's clock. */
const SKEW_MS = 15 * 60 * 1000;
const CREDENTIAL = /Credential=([^,\s]+)/;
const SIGNED_HEADERS = /SignedHeaders=([^,\s]+)/;
const SIGNATURE = /Signature=([0-9a-f]+)/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** An S3 error code (S3's XML error `Code`) and message for a refused request. */
export type S3AuthRejection = { status: number; code: string; message: string };

export type S3SignedRequest = {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The body as received (before aws-chunked decoding); hashed when the header names a hash. */
  body: Buffer;
};

/** The service of a request's SigV4 credential scope (header or presigned query), if signed. */
export function signedService(headers: IncomingHttpHeaders, url: string): string | undefined {
  const authorization = headerValue(headers, "authorization") ?? "";
  let credential = CREDENTIAL.exec(authorization)?.[1];
  if (!credential && url.includes("X-Amz-Credential")) {
    credential = new URL(url, "http://local").searchParams.get("X-Amz-Credential") ?? undefined;
  }
  return credential?.split("/")[3];
}

/** Verifies a request to the local S3; undefined when it is authentic. */
export function verifyS3Signature(
  request: S3SignedRequest,
  credentials: LocalAwsCredentials,
  nowMs: number,
): S3AuthRejection | undefined {
  const [rawPath = "/", rawQuery = ""] = splitOnce(request.url, "?");
  const query = new URLSearchParams(rawQuery);
  const presigned = query.has("X-Amz-Signature");
  const authorization = headerValue(request.headers, "authorization");
  if (!presigned && !authorization) {
    return { status: 403, code: "AccessDenied", message: "Anonymous access is not allowed." };
  }
  const credential = presigned ? query.get("X-Amz-Credential") : CREDENTIAL.exec(authorization ?? "")?.[1];
  const signedHeaders = presigned
    ? query.get("X-Amz-SignedHeaders")
    : SIGNED_HEADERS.exec(authorization ?? "")?.[1];
  const signature = presigned ? query.get("X-Amz-Signature") : SIGNATURE.exec(authorization ?? "")?.[1];
  const amzDate = (presigned ? query.get("X-Amz-Date") : headerValue(request.headers, "x-amz-date")) ?? "";
  const [accessKeyId, date, region, service, terminator] = (credential ?? "").split("/");
  if (!accessKeyId || !date || !region || !service || terminator !== "aws4_request" || !signedHeaders) {
    return { status: 400, code: "AuthorizationHeaderMalformed", message: "The authorization is malformed." };
  }
  if (!equal(accessKeyId, credentials.accessKeyId)) {
    return {
      status: 403,
      code: "InvalidAccessKeyId",
      message: "The AWS Access Key Id you provided does not exist in our records.",
    };
  }
  const signedAt = parseAmzDate(amzDate);
  if (signedAt === undefined || !amzDate.startsWith(date)) {
    return {
      status: 403,
      code: "AccessDenied",
      message: "X-Amz-Date is missing or does not match the scope.",
    };
  }
  if (presigned) {
    const expires = Number(query.get("X-Amz-Expires") ?? "");
    if (!Number.isInteger(expires) || expires < 1 || expires > 604800) {
      return { status: 400, code: "AuthorizationQueryParametersError", message: "X-Amz-Expires is invalid." };
    }
    if (nowMs > signedAt + expires * 1000 || signedAt - nowMs > SKEW_MS) {
      return { status: 403, code: "AccessDenied", message: "Request has expired" };
    }
  } else if (Math.abs(nowMs - signedAt) > SKEW_MS) {
    return {
      status: 403,
      code: "RequestTimeTooSkewed",
      message: "The difference between the request time and the current time is too large.",
    };
  }
  const headerNames = signedHeaders.split(";");
  if (!headerNames.includes("host")) {
    return { status: 403, code: "AccessDenied", message: "The host header must be signed." };
  }
  let payloadHash = "UNSIGNED-PAYLOAD";
  if (!presigned) {
    const claimed = headerValue(request.headers, "x-amz-content-sha256");
    if (!claimed) {
      return {
        status: 400,
        code: "InvalidRequest",
        message: "Missing required header x-amz-content-sha256.",
      };
    }
    if (/^[0-9a-f]{64}$/.test(claimed)) {
      if (createHash("sha256").update(request.body).digest("hex") !== claimed) {
        return {
          status: 400,
          code: "XAmzContentSHA256Mismatch",
          message: "The provided 'x-amz-content-sha256' header does not match what was computed.",
        };
      }
    } else if (claimed !== "UNSIGNED-PAYLOAD" && !claimed.startsWith("STREAMING-")) {
      return { status: 400, code: "InvalidArgument", message: "x-amz-content-sha256 is not valid." };
    }
    payloadHash = claimed;
  }
  const canonicalRequest = [
    request.method.toUpperCase(),
    canonicalPath(rawPath),
    canonicalQuery(rawQuery),
    `${headerNames.map((name) => `${name}:${canonicalHeaderValue(request.headers[name])}`).join("\n")}\n`,
    signedHeaders,
    payloadHash,
  ].join("\n");
  const expected = sign(credentials.secretAccessKey, date, region, service, amzDate, canonicalRequest);
  if (!equal(expected, signature ?? "")) {
    return {
      status: 403,
      code: "SignatureDoesNotMatch",
      message:
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    };
  }
  return undefined;
}

/**
 * A presigned GET URL (query-string SigV4, UNSIGNED-PAYLOAD) for an object, as AWS hands out in
 * ListThingRegistrationTaskReports' `resourceLinks`.
 */
export function presignGetUrl(options: {
  baseUrl: string;
  bucket: string;
  key: string;
  region: string;
  credentials: LocalAwsCredentials;
  expiresSeconds: number;
  nowMs: number;
}): string {
  const base = new URL(options.baseUrl);
  const path = `/${escapeUri(options.bucket)}/${options.key.split("/").map(escapeUri).join("/")}`;
  const amzDate = new Date(options.nowMs)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  const date = amzDate.slice(0, 8);
  const params: Array<[string, string]> = [
    ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
    ["X-Amz-Credential", `${options.credentials.accessKeyId}/${date}/${options.region}/s3/aws4_request`],
    ["X-Amz-Date", amzDate],
    ["X-Amz-Expires", String(options.expiresSeconds)],
    ["X-Amz-SignedHeaders", "host"],
  ];
  const rawQuery = params.map(([k, v]) => `${escapeUri(k)}=${escapeUri(v)}`).join("&");
  const canonicalRequest = [
    "GET",
    path,
    canonicalQuery(rawQuery),
    `host:${base.host}\n`,
    "host",
    "UNSIGNED-PAYLOAD",
  ].join("\n");
  const signature = sign(
    options.credentials.secretAccessKey,
    date,
    options.region,
    "s3",
    amzDate,
    canonicalRequest,
  );
  return `${base.protocol}//${base.host}${path}?${rawQuery}&X-Amz-Signature=${signature}`;
}

function sign(
  secret: string,
  date: string,
  region: string,
  service: string,
  amzDate: string,
  canonicalRequest: string,
): string {
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    createHash("sha256").update(canonicalRequest, "utf8").digest("hex"),
  ].join("\n");
  let key: Buffer = hmac(`AWS4${secret}`, date);
  for (const part of [region, service, "aws4_request"]) key = hmac(key, part);
  return hmac(key, stringToSign).toString("hex");
}

/** S3: each segment decoded and encoded once the RFC 3986 way; no dot-segment normalization. */
function canonicalPath(rawPath: string): string {
  return rawPath
    .split("/")
    .map((segment) => {
      try {
        return escapeUri(decodeURIComponent(segment));
      } catch {
        return segment;
      }
    })
    .join("/");
}

function canonicalQuery(rawQuery: string): string {
  const pairs: Array<readonly [string, string]> = [];
  for (const pair of rawQuery.split("&")) {
    if (pair === "") continue;
    const [key = "", value = ""] = splitOnce(pair, "=");
    let k = key;
    let v = value;
    try {
      k = decodeURIComponent(key.replace(/\+/g, "%20"));
      v = decodeURIComponent(value.replace(/\+/g, "%20"));
    } catch {
      // left as received: the signature will not match
    }
    if (k === "X-Amz-Signature") continue;
    pairs.push([escapeUri(k), escapeUri(v)]);
  }
  return pairs
    .sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join("&");
}

function canonicalHeaderValue(value: string | string[] | undefined): string {
  const values = Array.isArray(value) ? value : [value ?? ""];
  return values.map((v) => v.trim().replace(/\s+/g, " ")).join(",");
}

export const escapeUri = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

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

const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data, "utf8").digest();

function equal(a: string, b: string): boolean {
  const left = createHash("sha256").update(a).digest();
  const right = createHash("sha256").update(b).digest();
  return timingSafeEqual(left, right);
}
