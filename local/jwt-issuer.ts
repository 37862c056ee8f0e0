import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from "jose";

/**
 * The local stand-in for a Cognito user pool's ID tokens (the phone API's users). ES256, one key
 * kept in the data folder (`jwt-signing-key.pem`, 0600; a new one per in-memory start), JWKS at
 * `GET /.well-known/jwks.json` on the API server. Tokens carry Cognito ID-token claims
 * (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-id-token.html):
 * iss, aud (the app client id), sub, token_use "id", cognito:username, cognito:groups, iat, exp.
 */
export const JWT_KEY_FILE = "jwt-signing-key.pem";
export const JWKS_PATH = "/.well-known/jwks.json";
/** The app client id the local tokens are for (Cognito's `aud` of an ID token). */
export const LOCAL_JWT_AUDIENCE = "onramp-local-phone-app";
const ALG = "ES256";

export type IdTokenClaims = {
  sub: string;
  "cognito:username": string;
  "cognito:groups"?: string[];
  token_use: "id";
};

export class LocalJwtIssuer {
  private constructor(
    readonly issuer: string,
    private readonly privateKey: Awaited<ReturnType<typeof importPKCS8>>,
    private readonly publicJwk: JWK,
  ) {}

  /** Loads the data folder's key (or makes one; in memory without a folder). */
  static async create(options: { issuer: string; dataDir?: string }): Promise<LocalJwtIssuer> {
    const path = options.dataDir ? join(options.dataDir, JWT_KEY_FILE) : undefined;
    let pem: string;
    if (path && existsSync(path)) pem = readFileSync(path, "utf8");
    else {
      const { privateKey } = await generateKeyPair(ALG, { extractable: true });
      pem = await exportPKCS8(privateKey);
      if (path) {
        const temporary = `${path}.${process.pid}.tmp`;
        writeFileSync(temporary, pem, { mode: 0o600 });
        renameSync(temporary, path);
      }
    }
    return LocalJwtIssuer.fromPem(options.issuer, pem);
  }

  static async fromPem(issuer: string, pem: string): Promise<LocalJwtIssuer> {
    const privateKey = await importPKCS8(pem, ALG, { extractable: true });
    const { d: _private, ...publicJwk } = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    return new LocalJwtIssuer(issuer, privateKey, { ...publicJwk, kid, alg: ALG, use: "sig" });
  }

  /** The JWKS document (public key only). */
  jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  /** An ID token for a user, valid `ttlSeconds` (default 1 h, Cognito's default) from `nowMs`. */
  async issueIdToken(
    user: { userId: string; username: string; groups?: string[] },
    options: { nowMs?: number; ttlSeconds?: number } = {},
  ): Promise<string> {
    const iat = Math.floor((options.nowMs ?? Date.now()) / 1000);
    return new SignJWT({
      token_use: "id",
      "cognito:username": user.username,
      ...(user.groups && user.groups.length > 0 ? { "cognito:groups": user.groups } : {}),
      auth_time: iat,
    })
      .setProtectedHeader({ alg: ALG, kid: this.publicJwk.kid as string, typ: "JWT" })
      .setIssuer(this.issuer)
      .setAudience(LOCAL_JWT_AUDIENCE)
      .setSubject(user.userId)
      .setJti(randomUUID())
      .setIssuedAt(iat)
      .setExpirationTime(iat + (options.ttlSeconds ?? 3600))
      .sign(this.privateKey);
  }
}

/**
 * Verifies an ID token as API Gateway's Cognito authorizer does: signature against the issuer's
 * JWKS, `iss`, `aud`, `exp`, and `token_use` "id". Undefined when anything fails (the caller
 * answers 401 without saying why).
 */
export function jwtVerifier(options: {
  issuer: string;
  jwks: () => { keys: JWK[] };
  clock?: () => number;
}): (token: string) => Promise<(JWTPayload & Partial<IdTokenClaims>) | undefined> {
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(options.jwks()), {
        issuer: options.issuer,
        audience: LOCAL_JWT_AUDIENCE,
        algorithms: [ALG],
        requiredClaims: ["sub", "exp", "iat"],
        ...(options.clock ? { currentDate: new Date(options.clock()) } : {}),
      });
      if (payload.token_use !== "id") return undefined;
      return payload as JWTPayload & Partial<IdTokenClaims>;
    } catch {
      return undefined;
    }
  };
}
