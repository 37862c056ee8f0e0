import { randomUUID } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname } from "node:path";
import * as z from "zod";

type StoredSecret = { name: string; arn: string; secretString: string; versionId: string; createdAt: number };

const nameSchema = z.string().regex(/^[A-Za-z0-9/_+=.@-]{1,512}$/);
const schemas = {
  CreateSecret: z.object({ Name: nameSchema, SecretString: z.string().min(1).max(65536) }).loose(),
  GetSecretValue: z.object({ SecretId: z.string().min(1) }).loose(),
  PutSecretValue: z
    .object({ SecretId: z.string().min(1), SecretString: z.string().min(1).max(65536) })
    .loose(),
  DescribeSecret: z.object({ SecretId: z.string().min(1) }).loose(),
};

class SecretsManagerError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/**
 * The Secrets Manager calls the project uses (CreateSecret, GetSecretValue, PutSecretValue,
 * DescribeSecret) in the awsJson1_1 protocol the SDK speaks: `POST /` with
 * `X-Amz-Target: secretsmanager.<Operation>`. State lives in one JSON file (mode 0600), replaced
 * atomically and fsync'd before the answer. Signatures are checked in front of it (the local
 * stack's AWS endpoint).
 */
export class SecretsManagerEmulator {
  private readonly secrets = new Map<string, StoredSecret>();

  constructor(private readonly options: { path?: string; region: string; accountId: string }) {
    if (options.path && existsSync(options.path)) {
      for (const s of JSON.parse(readFileSync(options.path, "utf8")) as StoredSecret[])
        this.secrets.set(s.name, s);
    }
  }

  /** True when this request is for Secrets Manager. */
  static accepts(req: IncomingMessage): boolean {
    return String(req.headers["x-amz-target"] ?? "").startsWith("secretsmanager.");
  }

  handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const operation = String(req.headers["x-amz-target"]).slice("secretsmanager.".length);
    try {
      const result = this.dispatch(operation, body);
      res.writeHead(200, { "content-type": "application/x-amz-json-1.1" }).end(JSON.stringify(result));
    } catch (error) {
      const e =
        error instanceof SecretsManagerError
          ? error
          : new SecretsManagerError("InternalServiceError", "internal", 500);
      res
        .writeHead(e.status, { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": e.type })
        .end(JSON.stringify({ __type: e.type, message: e.message }));
    }
  }

  private dispatch(operation: string, body: string): unknown {
    let json: unknown;
    try {
      json = JSON.parse(body || "{}");
    } catch {
      throw new SecretsManagerError("InvalidRequestException", "malformed JSON");
    }
    switch (operation) {
      case "CreateSecret": {
        const input = parse(schemas.CreateSecret, json);
        if (this.secrets.has(input.Name)) {
          throw new SecretsManagerError(
            "ResourceExistsException",
            `The secret ${input.Name} already exists.`,
          );
        }
        const secret = this.store(input.Name, input.SecretString);
        return { ARN: secret.arn, Name: secret.name, VersionId: secret.versionId };
      }
      case "GetSecretValue": {
        const secret = this.find(parse(schemas.GetSecretValue, json).SecretId);
        return {
          ARN: secret.arn,
          Name: secret.name,
          SecretString: secret.secretString,
          VersionId: secret.versionId,
          VersionStages: ["AWSCURRENT"],
          CreatedDate: secret.createdAt / 1000,
        };
      }
      case "PutSecretValue": {
        const input = parse(schemas.PutSecretValue, json);
        const secret = this.store(this.find(input.SecretId).name, input.SecretString);
        return {
          ARN: secret.arn,
          Name: secret.name,
          VersionId: secret.versionId,
          VersionStages: ["AWSCURRENT"],
        };
      }
      case "DescribeSecret": {
        const secret = this.find(parse(schemas.DescribeSecret, json).SecretId);
        return { ARN: secret.arn, Name: secret.name, CreatedDate: secret.createdAt / 1000 };
      }
      default:
        throw new SecretsManagerError("InvalidRequestException", `Operation ${operation} is not emulated.`);
    }
  }

  private find(id: string): StoredSecret {
    const secret = this.secrets.get(id) ?? [...this.secrets.values()].find((s) => s.arn === id);
    if (!secret)
      throw new SecretsManagerError(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
      );
    return secret;
  }

  private store(name: string, secretString: string): StoredSecret {
    const existing = this.secrets.get(name);
    const secret: StoredSecret = {
      name,
      arn:
        existing?.arn ??
        `arn:aws:secretsmanager:${this.options.region}:${this.options.accountId}:secret:${name}-${randomUUID().slice(0, 6)}`,
      secretString,
      versionId: randomUUID(),
      createdAt: existing?.createdAt ?? Date.now(),
    };
    this.secrets.set(name, secret);
    this.save();
    return secret;
  }

  private save(): void {
    const path = this.options.path;
    if (!path) return;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const temp = `${path}.${process.pid}.tmp`;
    const fd = openSync(temp, "w", 0o600);
    try {
      writeSync(fd, JSON.stringify([...this.secrets.values()], null, 2));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    const folder = openSync(dirname(path), "r");
    try {
      fsyncSync(folder); // the rename itself
    } finally {
      closeSync(folder);
    }
  }
}

function parse<S extends z.ZodType>(schema: S, json: unknown): z.infer<S> {
  const result = schema.safeParse(json);
  if (!result.success) {
    throw new SecretsManagerError(
      "InvalidParameterException",
      result.error.issues.map((i) => i.path.join(".")).join(", "),
    );
  }
  return result.data;
}
