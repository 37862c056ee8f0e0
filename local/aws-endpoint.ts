import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { LocalAwsCredentials } from "./aws-auth/local-aws-credentials.ts";
import { type SignatureRejection, verifySignature } from "./aws-auth/sigv4-verification.ts";
import type { IotEmulator } from "./iot/index.ts";
import { S3Emulator } from "./s3/s3-emulator.ts";
import { SecretsManagerEmulator } from "./secrets-manager/secrets-manager-emulator.ts";

/** Largest request body read before the signature check (the emulators' own limits are lower). */
const MAX_BODY_BYTES = 2 * 1024 * 1024;

export type LocalAwsEndpoint = { url: string; close(): Promise<void> };

/**
 * The local stack's AWS endpoint: one HTTP server for the IoT control plane (REST, by path) and
 * Secrets Manager (`X-Amz-Target: secretsmanager.*`). Like AWS, it serves only requests signed
 * (SigV4) with its key pair; anything else gets 403 with AWS's error code
 * (MissingAuthenticationTokenException, UnrecognizedClientException, InvalidSignatureException)
 * in the header and body both protocols read.
 */
export async function startLocalAwsEndpoint(options: {
  iot: IotEmulator;
  secretsManager: SecretsManagerEmulator;
  credentials: LocalAwsCredentials;
  /** Requests signed for `s3` go here (it reads larger bodies and checks S3's SigV4 itself). */
  s3?: S3Emulator;
  host: string;
  port: number;
  now?: () => number;
}): Promise<LocalAwsEndpoint> {
  const now = options.now ?? Date.now;
  const server = createServer((req, res) => {
    if (options.s3 && S3Emulator.accepts(req)) return options.s3.handle(req, res);
    readBody(req).then(
      (body) => {
        if (body === undefined)
          return reject(res, 413, "RequestEntityTooLargeException", "Request too large.");
        const refused = verifySignature(
          { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, body },
          options.credentials,
          now(),
        );
        if (refused) return rejectSignature(res, refused);
        if (SecretsManagerEmulator.accepts(req))
          options.secretsManager.handle(req, res, body.toString("utf8"));
        else options.iot.handler(req, res, body);
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = options.host.includes(":") ? `[${options.host}]` : options.host;
  return { url: `http://${shownHost}:${port}`, close: () => close(server) };
}

function rejectSignature(res: ServerResponse, rejection: SignatureRejection): void {
  reject(res, 403, rejection.code, rejection.message);
}

/** An error both the REST-JSON (header) and the JSON 1.1 (`__type`) protocols read. */
function reject(res: ServerResponse, status: number, code: string, message: string): void {
  const text = JSON.stringify({ __type: code, message });
  res
    .writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      "x-amzn-ErrorType": code,
    })
    .end(text);
}

/** The whole body, or undefined past the limit. */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
