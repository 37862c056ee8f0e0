import { randomBytes } from "node:crypto";
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  type SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import type { SecretStore } from "#core/registry/ports.ts";
import { isAwsError, translateAwsError } from "./aws-errors.ts";

export type SecretNames = {
  /** Product secrets are stored as `${productSecretPrefix}${productKey}`. */
  productSecretPrefix: string;
  /** The registry key that seals per-device secrets. */
  registryKeyName: string;
};

const CACHE_MS = 5 * 60_000;

/**
 * Secrets in AWS Secrets Manager (the local stack emulates the same calls). Values are cached
 * per instance for five minutes so the vending path does not call Secrets Manager every time.
 */
export class SecretsManagerSecretStore implements SecretStore {
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

  /** The registry key; created on first use (32 random bytes, base64). */
  async getRegistryKey(): Promise<Buffer> {
    let value = await this.read(this.names.registryKeyName);
    if (value === undefined) {
      await this.create(this.names.registryKeyName, randomBytes(32).toString("base64"));
      this.cache.delete(this.names.registryKeyName);
      value = await this.read(this.names.registryKeyName);
    }
    if (value === undefined) throw translateAwsError(new Error("registry key missing"), "GetRegistryKey");
    return Buffer.from(value, "base64");
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
