import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { type Logger, silentLogger } from "#core/logger.ts";
import type { LocalAwsCredentials } from "../aws-auth/local-aws-credentials.ts";
import { escapeUri, presignGetUrl, signedService, verifyS3Signature } from "./s3-signature.ts";

/** Largest object accepted in one PutObject (multipart upload is not emulated). */
export const MAX_OBJECT_BYTES = 256 * 1024 * 1024;
/** Bucket names: 3-63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

type ObjectMeta = { key: string; size: number; etag: string; lastModified: number; contentType: string };

/** An S3 error as S3 answers it (XML body with Code and Message; HEAD answers carry no body). */
export class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

export type S3EmulatorOptions = {
  /** Objects live here (`<dir>/<bucket>/<sha256(key)>` and `.json` metadata, 0600); memory when absent. */
  dataDir?: string;
  region: string;
  /** The key pair requests must be signed with (the local AWS endpoint's). */
  credentials: LocalAwsCredentials;
  logger?: Logger;
  now?: () => number;
};

/**
 * A small S3 for the local stack, on the local AWS endpoint: CreateBucket, HeadBucket,
 * DeleteBucket, ListBuckets, PutObject, GetObject (with a `Range`), HeadObject, DeleteObject and
 * ListObjectsV2 (prefix, delimiter, start-after, continuation token, max-keys), path-style and
 * `bucket.localhost` virtual-hosted addressing, aws-chunked uploads, presigned GET URLs.
 * Request and response shapes follow the S3 API reference
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html); what it does not do
 * (multipart upload, versioning, ACLs, copy) answers NotImplemented. `@aws-sdk/client-s3`
 * (`forcePathStyle` or not) and `aws s3` / `aws s3api` talk to it unchanged.
 */
export class S3Emulator {
  private readonly buckets = new Map<string, { created: number; objects: Map<string, ObjectMeta> }>();
  private readonly bodies = new Map<string, Buffer>();
  private readonly logger: Logger;
  private readonly now: () => number;
  /** Where presigned links point (the local AWS endpoint's URL, once it listens). */
  publicUrl = "http://127.0.0.1:4566";

  constructor(private readonly options: S3EmulatorOptions) {
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    if (options.dataDir) this.load(options.dataDir);
  }

  /** True for requests signed for the `s3` service (header or presigned query). */
  static accepts(req: IncomingMessage): boolean {
    return signedService(req.headers, req.url ?? "/") === "s3";
  }

  // ---- in-process API (the IoT emulator's registration tasks) ----

  createBucket(bucket: string): boolean {
    if (!BUCKET_NAME.test(bucket))
      throw new S3Error(400, "InvalidBucketName", "The specified bucket is not valid.");
    if (this.buckets.has(bucket)) return false;
    this.buckets.set(bucket, { created: this.now(), objects: new Map() });
    if (this.options.dataDir) {
      mkdirSync(join(this.options.dataDir, bucket), { recursive: true, mode: 0o700 });
      writePrivate(
        join(this.options.dataDir, bucket, ".bucket.json"),
        JSON.stringify({ created: this.now() }),
      );
    }
    return true;
  }

  hasBucket(bucket: string): boolean {
    return this.buckets.has(bucket);
  }

  putObject(bucket: string, key: string, body: Buffer, contentType = "binary/octet-stream"): ObjectMeta {
    const objects = this.bucket(bucket).objects;
    checkKey(key);
    const meta: ObjectMeta = {
      key,
      size: body.length,
      etag: `"${createHash("md5").update(body).digest("hex")}"`,
      lastModified: this.now(),
      contentType,
    };
    if (this.options.dataDir) {
      const file = join(this.options.dataDir, bucket, objectFile(key));
      writePrivate(file, body);
      writePrivate(`${file}.json`, JSON.stringify(meta));
    } else {
      this.bodies.set(`${bucket}/${key}`, body);
    }
    objects.set(key, meta);
    return meta;
  }

  /** The object's bytes, or undefined when there is no such object (or bucket). */
  getObject(bucket: string, key: string): { meta: ObjectMeta; body: Buffer } | undefined {
    const meta = this.buckets.get(bucket)?.objects.get(key);
    if (!meta) return undefined;
    const body = this.options.dataDir
      ? readFileSync(join(this.options.dataDir, bucket, objectFile(key)))
      : (this.bodies.get(`${bucket}/${key}`) ?? Buffer.alloc(0));
    return { meta, body };
  }

  deleteObject(bucket: string, key: string): void {
    const objects = this.bucket(bucket).objects;
    if (!objects.delete(key)) return;
    if (this.options.dataDir) {
      const file = join(this.options.dataDir, bucket, objectFile(key));
      rmSync(file, { force: true });
      rmSync(`${file}.json`, { force: true });
    } else {
      this.bodies.delete(`${bucket}/${key}`);
    }
  }

  /** A presigned GET URL of an object on this endpoint. */
  presignGet(bucket: string, key: string, expiresSeconds = 3600): string {
    return presignGetUrl({
      baseUrl: this.publicUrl,
      bucket,
      key,
      region: this.options.region,
      credentials: this.options.credentials,
      expiresSeconds,
      nowMs: this.now(),
    });
  }

  // ---- HTTP ----

  /** Serves one request (reads the body itself, up to MAX_OBJECT_BYTES). */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.serve(req, res).catch((error: unknown) => {
      if (error instanceof S3Error) return sendError(res, req.method === "HEAD", error);
      this.logger.error("s3 emulator: unexpected failure", { error: String(error) });
      if (!res.headersSent) sendError(res, false, new S3Error(500, "InternalError", "Internal error."));
      else res.destroy();
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (raw === undefined) {
      throw new S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.");
    }
    const refused = verifyS3Signature(
      { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, body: raw },
      this.options.credentials,
      this.now(),
    );
    if (refused) throw new S3Error(refused.status, refused.code, refused.message);
    const url = new URL(req.url ?? "/", "http://local");
    const { bucket, key } = address(req.headers.host ?? "", url.pathname);
    const method = (req.method ?? "GET").toUpperCase();
    const q = url.searchParams;
    for (const unsupported of ["uploads", "uploadId", "versioning", "acl", "policy", "tagging", "versions"]) {
      if (q.has(unsupported)) throw notImplemented(unsupported);
    }
    if (!bucket) {
      if (method === "GET") return this.listBuckets(res);
      throw new S3Error(
        405,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
      );
    }
    if (key === undefined) {
      switch (method) {
        case "PUT":
          if (!this.createBucket(bucket)) {
            throw new S3Error(
              409,
              "BucketAlreadyOwnedByYou",
              "Your previous request to create the named bucket succeeded and you already own it.",
              { BucketName: bucket },
            );
          }
          return send(res, 200, "", { location: `/${bucket}` });
        case "HEAD":
          this.bucket(bucket);
          return send(res, 200, "", { "x-amz-bucket-region": this.options.region });
        case "DELETE": {
          if (this.bucket(bucket).objects.size > 0) {
            throw new S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty.", {
              BucketName: bucket,
            });
          }
          this.buckets.delete(bucket);
          if (this.options.dataDir)
            rmSync(join(this.options.dataDir, bucket), { recursive: true, force: true });
          return send(res, 204, "");
        }
        case "GET":
          if (q.has("location")) {
            this.bucket(bucket);
            return sendXml(
              res,
              `<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${this.options.region === "us-east-1" ? "" : this.options.region}</LocationConstraint>`,
            );
          }
          if (q.get("list-type") !== "2") throw notImplemented("ListObjects (v1); use ListObjectsV2");
          return this.listObjectsV2(res, bucket, q);
        default:
          throw new S3Error(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
          );
      }
    }
    switch (method) {
      case "PUT": {
        if (req.headers["x-amz-copy-source"]) throw notImplemented("CopyObject");
        const body = decodeBody(req, raw);
        const contentType = String(req.headers["content-type"] ?? "binary/octet-stream");
        const meta = this.putObject(bucket, key, body, contentType);
        return send(res, 200, "", { etag: meta.etag });
      }
      case "GET":
      case "HEAD": {
        this.bucket(bucket);
        const found = this.getObject(bucket, key);
        if (!found) throw new S3Error(404, "NoSuchKey", "The specified key does not exist.", { Key: key });
        const headers: Record<string, string> = {
          etag: found.meta.etag,
          "last-modified": new Date(found.meta.lastModified).toUTCString(),
          "content-type": found.meta.contentType,
          "accept-ranges": "bytes",
        };
        const range = method === "GET" ? parseRange(req.headers.range, found.body.length) : undefined;
        if (range) {
          const part = found.body.subarray(range.start, range.end + 1);
          headers["content-range"] = `bytes ${range.start}-${range.end}/${found.body.length}`;
          return send(res, 206, part, headers);
        }
        if (method === "HEAD") {
          res.writeHead(200, {
            ...headers,
            "content-length": found.body.length,
            "x-amz-request-id": requestId(),
          });
          res.end();
          return;
        }
        return send(res, 200, found.body, headers);
      }
      case "DELETE":
        this.deleteObject(bucket, key);
        return send(res, 204, "");
      default:
        throw new S3Error(
          405,
          "MethodNotAllowed",
          "The specified method is not allowed against this resource.",
        );
    }
  }

  private listBuckets(res: ServerResponse): void {
    const items = [...this.buckets.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(
        ([name, b]) =>
          `<Bucket><Name>${xml(name)}</Name><CreationDate>${new Date(b.created).toISOString()}</CreationDate></Bucket>`,
      )
      .join("");
    sendXml(
      res,
      `<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>local</ID><DisplayName>local</DisplayName></Owner><Buckets>${items}</Buckets></ListAllMyBucketsResult>`,
    );
  }

  private listObjectsV2(res: ServerResponse, bucket: string, q: URLSearchParams): void {
    const objects = this.bucket(bucket).objects;
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") ?? "";
    const maxKeys = Math.min(1000, Math.max(0, Number(q.get("max-keys") ?? "1000") || 0));
    const token = q.get("continuation-token");
    let after = q.get("start-after") ?? "";
    if (token) {
      try {
        after = Buffer.from(token, "base64url").toString("utf8");
      } catch {
        throw new S3Error(400, "InvalidArgument", "The continuation token provided is incorrect");
      }
    }
    const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
    const contents: ObjectMeta[] = [];
    const prefixes = new Set<string>();
    let last = "";
    let truncated = false;
    for (const key of keys) {
      if (contents.length + prefixes.size >= maxKeys) {
        truncated = true;
        break;
      }
      if (delimiter) {
        const at = key.indexOf(delimiter, prefix.length);
        if (at >= 0) {
          const common = key.slice(0, at + delimiter.length);
          if (!prefixes.has(common)) prefixes.add(common);
          last = key;
          continue;
        }
      }
      const meta = objects.get(key);
      if (meta) contents.push(meta);
      last = key;
    }
    const encode = q.get("encoding-type") === "url";
    const k = (text: string) => xml(encode ? escapeUri(text).replace(/%2F/g, "/") : text);
    const body = [
      `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`,
      `<Name>${xml(bucket)}</Name><Prefix>${k(prefix)}</Prefix><KeyCount>${contents.length + prefixes.size}</KeyCount>`,
      `<MaxKeys>${maxKeys}</MaxKeys>${delimiter ? `<Delimiter>${k(delimiter)}</Delimiter>` : ""}<IsTruncated>${truncated}</IsTruncated>`,
      encode ? "<EncodingType>url</EncodingType>" : "",
      token ? `<ContinuationToken>${xml(token)}</ContinuationToken>` : "",
      truncated
        ? `<NextContinuationToken>${Buffer.from(last).toString("base64url")}</NextContinuationToken>`
        : "",
      q.get("start-after") ? `<StartAfter>${k(q.get("start-after") ?? "")}</StartAfter>` : "",
      ...contents.map(
        (m) =>
          `<Contents><Key>${k(m.key)}</Key><LastModified>${new Date(m.lastModified).toISOString()}</LastModified><ETag>${xml(m.etag)}</ETag><Size>${m.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      ),
      ...[...prefixes].map((p) => `<CommonPrefixes><Prefix>${k(p)}</Prefix></CommonPrefixes>`),
      "</ListBucketResult>",
    ].join("");
    sendXml(res, body);
  }

  private bucket(name: string) {
    const bucket = this.buckets.get(name);
    if (!bucket)
      throw new S3Error(404, "NoSuchBucket", "The specified bucket does not exist", { BucketName: name });
    return bucket;
  }

  private load(dir: string): void {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !BUCKET_NAME.test(entry.name)) continue;
      const bucketDir = join(dir, entry.name);
      let created = this.now();
      if (existsSync(join(bucketDir, ".bucket.json"))) {
        created = (JSON.parse(readFileSync(join(bucketDir, ".bucket.json"), "utf8")) as { created: number })
          .created;
      }
      const objects = new Map<string, ObjectMeta>();
      for (const file of readdirSync(bucketDir)) {
        if (!/^[0-9a-f]{64}\.json$/.test(file)) continue;
        try {
          const meta = JSON.parse(readFileSync(join(bucketDir, file), "utf8")) as ObjectMeta;
          if (existsSync(join(bucketDir, file.slice(0, -5)))) objects.set(meta.key, meta);
        } catch {
          this.logger.warn("s3 emulator: unreadable object metadata skipped", { file });
        }
      }
      this.buckets.set(entry.name, { created, objects });
    }
  }
}

/** Bucket and key from a path-style (`/bucket/key`) or `bucket.localhost` virtual-hosted request. */
function address(host: string, pathname: string): { bucket?: string; key?: string } {
  const hostname = host.replace(/:\d+$/, "");
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new S3Error(400, "InvalidURI", "Couldn't parse the specified URI.");
    }
  };
  if (hostname.endsWith(".localhost")) {
    const bucket = hostname.slice(0, -".localhost".length);
    const key = pathname.length > 1 ? decode(pathname.slice(1)) : undefined;
    return { bucket, ...(key !== undefined ? { key } : {}) };
  }
  const rest = pathname.slice(1);
  if (rest === "") return {};
  const slash = rest.indexOf("/");
  if (slash < 0) return { bucket: decode(rest) };
  const key = decode(rest.slice(slash + 1));
  return { bucket: decode(rest.slice(0, slash)), ...(key !== "" ? { key } : {}) };
}

function checkKey(key: string): void {
  if (key.length === 0 || Buffer.byteLength(key) > 1024) {
    throw new S3Error(400, "KeyTooLongError", "Your key is too long.");
  }
}

/**
 * The object bytes: the body as sent, or decoded from aws-chunked framing
 * (`<hex size>[;chunk-signature=...]\r\n<data>\r\n` ... `0...\r\n[trailers]\r\n`), which the SDKs
 * use for streaming uploads with trailing checksums.
 */
function decodeBody(req: IncomingMessage, raw: Buffer): Buffer {
  const sha = String(req.headers["x-amz-content-sha256"] ?? "");
  const encoding = String(req.headers["content-encoding"] ?? "");
  if (!sha.startsWith("STREAMING-") && !encoding.includes("aws-chunked")) return raw;
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = raw.indexOf("\r\n", at);
    if (lineEnd < 0) throw new S3Error(400, "IncompleteBody", "The aws-chunked body is truncated.");
    const size = Number.parseInt(raw.subarray(at, lineEnd).toString("latin1").split(";")[0] ?? "", 16);
    if (!Number.isInteger(size) || size < 0)
      throw new S3Error(400, "InvalidRequest", "Bad aws-chunked framing.");
    at = lineEnd + 2;
    if (size === 0) break;
    parts.push(raw.subarray(at, at + size));
    at += size + 2;
  }
  const body = Buffer.concat(parts);
  const declared = req.headers["x-amz-decoded-content-length"];
  if (declared !== undefined && Number(declared) !== body.length) {
    throw new S3Error(
      400,
      "IncompleteBody",
      "The decoded length does not match x-amz-decoded-content-length.",
    );
  }
  return body;
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(size - 1, Number(m[2]));
  }
  if (start >= size || start > end) {
    throw new S3Error(416, "InvalidRange", "The requested range is not satisfiable");
  }
  return { start, end };
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_OBJECT_BYTES + 1024 * 1024) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

const objectFile = (key: string) => createHash("sha256").update(key, "utf8").digest("hex");
const requestId = () => randomUUID().replace(/-/g, "").slice(0, 16).toUpperCase();
const notImplemented = (what: string) =>
  new S3Error(501, "NotImplemented", `The local S3 does not implement ${what}.`);

function xml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Replaces a file atomically, readable by the owner only. */
function writePrivate(path: string, data: string | Buffer): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, data, { mode: 0o600 });
  renameSync(temporary, path);
}

function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  const data = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  res.writeHead(status, { ...headers, "content-length": data.length, "x-amz-request-id": requestId() });
  res.end(data);
}

function sendXml(res: ServerResponse, body: string): void {
  send(res, 200, `<?xml version="1.0" encoding="UTF-8"?>\n${body}`, { "content-type": "application/xml" });
}

function sendError(res: ServerResponse, head: boolean, error: S3Error): void {
  const id = requestId();
  const extra = Object.entries(error.extra)
    .map(([k, v]) => `<${k}>${xml(v)}</${k}>`)
    .join("");
  const body = head
    ? ""
    : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${error.code}</Code><Message>${xml(error.message)}</Message>${extra}<RequestId>${id}</RequestId></Error>`;
  if (res.headersSent) return void res.destroy();
  res.writeHead(error.status, {
    "content-type": "application/xml",
    "content-length": Buffer.byteLength(body),
    "x-amz-request-id": id,
  });
  res.end(body);
}
