import { randomBytes } from "node:crypto";
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { ConflictError } from "#core/errors.ts";
import type { SecretStore } from "#core/registry/ports.ts";
import type { RegistryKeyRing, RegistryKeyStore } from "#core/registry/rotate-registry-key.ts";
import { KEY_ID_PATTERN, LEGACY_KEY_ID } from "#core/registry/sealed-secret.ts";
import { isAwsError, translateAwsError } from "./aws-errors.ts";

export type SecretNames = {
  /** Product secrets are stored as `${productSecretPrefix}${productKey}`. */
  productSecretPrefix: string;
  /** The registry key that seals per-device secrets. */
  registryKeyName: string;
};

const CACHE_MS = 5 * 60_000;

/** The JSON the registry key secret holds once a rotation has run (before: one base64 key). */
type StoredKeyRing = {
  format: typeof KEY_RING_FORMAT;
  currentKeyId: string;
  currentSince?: number;
  pendingKeyId?: string;
  /** Key id -> 32 bytes, base64. */
  keys: Record<string, string>;
};
const KEY_RING_FORMAT = "onramp-registry-keys/1";

/**
 * Secrets in AWS Secrets Manager (the local stack emulates the same calls). Values are cached
 * per instance for five minutes so the vending path does not call Secrets Manager every time.
 *
 * The registry key secret holds either one key as base64 (what CDK and the first release
 * create: it is the key LEGACY_KEY_ID) or, after a rotation, a JSON key ring
 * (`{"format":"onramp-registry-keys/1","currentKeyId",...,"keys":{id: base64}}`). Only the
 * operator CLI writes it (PutSecretValue); Lambda functions only read it.
 */
export class SecretsManagerSecretStore implements SecretStore, RegistryKeyStore {
  private readonly cache = new Map<string, { value: Promise<string | undefined>; at: number }>();

  constructor(
    private readonly client: SecretsManagerClient,
    private readonly names: SecretNames,
    private readonly clock: () => number = Date.now,
  ) {}

  getProductSecret(productKey: string): Promise<string | undefined> {
    return this.read(`${this.names.productSecretPrefix}${productKey}`);
  }

  async createProductSecret(productKey: string, secret: string): Promise<boolean> {
    const name = `${this.names.productSecretPrefix}${productKey}`;
    this.cache.delete(name);
    return this.create(name, secret);
  }

  /** The registry keys; the first key is created on first use (32 random bytes, base64). */
  async getRegistryKeys(options: { fresh?: boolean } = {}): Promise<RegistryKeyRing> {
    const name = this.names.registryKeyName;
    if (options.fresh) this.cache.delete(name);
    let value = await this.read(name);
    if (value === undefined) {
      await this.create(name, randomBytes(32).toString("base64"));
      this.cache.delete(name);
      value = await this.read(name);
    }
    if (value === undefined) throw translateAwsError(new Error("registry key missing"), "GetRegistryKey");
    return parseKeyRing(value);
  }

  async addPendingRegistryKey(keyId: string): Promise<RegistryKeyRing> {
    return this.changeKeyRing((ring) => {
      if (ring.pendingKeyId === keyId) return false;
      if (ring.pendingKeyId !== undefined) {
        throw new ConflictError(
          "ROTATION_UNFINISHED",
          `A rotation to key ${ring.pendingKeyId} is unfinished.`,
        );
      }
      if (!KEY_ID_PATTERN.test(keyId) || ring.keys[keyId] !== undefined) {
        throw new ConflictError("KEY_ID_EXISTS", `Key id ${keyId} exists already or is not valid.`);
      }
      ring.keys[keyId] = randomBytes(32).toString("base64");
      ring.pendingKeyId = keyId;
      return true;
    });
  }

  async promotePendingRegistryKey(keyId: string): Promise<RegistryKeyRing> {
    return this.changeKeyRing((ring) => {
      if (ring.currentKeyId === keyId && ring.pendingKeyId === undefined) return false;
      if (ring.pendingKeyId !== keyId) {
        throw new ConflictError("NOT_PENDING", `Key ${keyId} is not the pending registry key.`);
      }
      ring.currentKeyId = keyId;
      ring.currentSince = this.clock();
      delete ring.pendingKeyId;
      return true;
    });
  }

  async removeRegistryKeys(keyIds: string[]): Promise<RegistryKeyRing> {
    return this.changeKeyRing((ring) => {
      let changed = false;
      for (const id of keyIds) {
        if (id === ring.currentKeyId || id === ring.pendingKeyId || ring.keys[id] === undefined) continue;
        delete ring.keys[id];
        changed = true;
      }
      return changed;
    });
  }

  /** Reads the key ring past the cache, lets `change` edit it, writes it back if it changed. */
  private async changeKeyRing(change: (ring: StoredKeyRing) => boolean): Promise<RegistryKeyRing> {
    const name = this.names.registryKeyName;
    await this.getRegistryKeys({ fresh: true });
    const value = await this.read(name);
    const ring = storedKeyRing(value ?? "");
    if (change(ring)) {
      this.cache.delete(name);
      try {
        await this.client.send(
          new PutSecretValueCommand({ SecretId: name, SecretString: JSON.stringify(ring) }),
        );
      } catch (error) {
        throw translateAwsError(error, "PutSecretValue");
      }
    }
    return toKeyRing(ring);
  }

  private read(name: string): Promise<string | undefined> {
    const hit = this.cache.get(name);
    if (hit && this.clock() - hit.at < CACHE_MS) return hit.value;
    const value = this.client.send(new GetSecretValueCommand({ SecretId: name })).then(
      (out) => out.SecretString,
      (error: unknown) => {
        this.cache.delete(name);
        if (isAwsError(error, "ResourceNotFoundException")) return undefined;
        throw translateAwsError(error, "GetSecretValue");
      },
    );
    this.cache.set(name, { value, at: this.clock() });
    return value;
  }

  /** CreateSecret; false when the secret exists already (nothing is overwritten). */
  private async create(name: string, secret: string): Promise<boolean> {
    try {
      await this.client.send(new CreateSecretCommand({ Name: name, SecretString: secret }));
      return true;
    } catch (error) {
      if (isAwsError(error, "ResourceExistsException")) return false;
      throw translateAwsError(error, "CreateSecret");
    }
  }
}

/** The key ring a registry key secret holds, in either of its two forms. */
function parseKeyRing(value: string): RegistryKeyRing {
  return toKeyRing(storedKeyRing(value));
}

function storedKeyRing(value: string): StoredKeyRing {
  const text = value.trim();
  if (!text.startsWith("{")) {
    return { format: KEY_RING_FORMAT, currentKeyId: LEGACY_KEY_ID, keys: { [LEGACY_KEY_ID]: text } };
  }
  let ring: Partial<StoredKeyRing>;
  try {
    ring = JSON.parse(text) as Partial<StoredKeyRing>;
  } catch (error) {
    throw translateAwsError(error, "GetRegistryKey");
  }
  const keys = ring.keys;
  const valid =
    ring.format === KEY_RING_FORMAT &&
    typeof ring.currentKeyId === "string" &&
    typeof keys === "object" &&
    keys !== null &&
    Object.values(keys).every((k) => typeof k === "string") &&
    typeof keys[ring.currentKeyId] === "string" &&
    (ring.pendingKeyId === undefined || typeof keys[ring.pendingKeyId] === "string");
  if (!valid) throw translateAwsError(new Error("registry key ring malformed"), "GetRegistryKey");
  return ring as StoredKeyRing;
}

function toKeyRing(ring: StoredKeyRing): RegistryKeyRing {
  return {
    currentKeyId: ring.currentKeyId,
    keys: new Map(Object.entries(ring.keys).map(([id, key]) => [id, Buffer.from(key, "base64")])),
    ...(ring.pendingKeyId === undefined ? {} : { pendingKeyId: ring.pendingKeyId }),
    ...(ring.currentSince === undefined ? {} : { currentSince: ring.currentSince }),
  };
}
