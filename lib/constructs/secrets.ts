import { ArnFormat, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import { defaultSecretNames } from "#adapters/services.ts";

/** Settings of {@link OnrampSecrets}. */
export type OnrampSecretsProps = {
  /** Product secret prefix and registry key name (default: the adapter's `defaultSecretNames`). */
  names?: { productSecretPrefix: string; registryKeyName: string };
  /** RETAIN (default): losing the registry key makes every sealed device secret unreadable. */
  removalPolicy?: RemovalPolicy;
};

/**
 * Characters Secrets Manager may put in a generated value, minus the base64 alphabet: what
 * `excludeCharacters` must list so that only `A-Z a-z 0-9 + /` remain.
 */
export const NON_BASE64_PUNCTUATION = "!\"#$%&'()*,-.:;<=>?@[\\]^_`{|}~";

/**
 * Length of the generated registry key: 43 base64 characters. Node's base64 decoder (the
 * adapter's `Buffer.from(value, "base64")`) reads them as exactly 32 bytes: 42 characters carry
 * 252 bits, the 43rd the last 4 (its 2 low bits are dropped); no `=` padding is needed. With each
 * character drawn uniformly from the 64-character alphabet, the 32 bytes are uniformly random,
 * as `randomBytes(32).toString("base64")` (what the local stack and CLI write) would give.
 * Secrets Manager cannot produce base64 of random bytes directly; this is the equivalent.
 */
export const REGISTRY_KEY_BASE64_LENGTH = 43;

/**
 * Secrets Manager side of the registry: the registry key secret (created here, value generated
 * by Secrets Manager) and the name prefix of the product secrets, which the operator CLI creates
 * later (`onramp/products/{productKey}`), so they are granted by ARN pattern.
 */
export class OnrampSecrets extends Construct {
  /** The registry key that seals per-device secrets (AES-256-GCM). */
  readonly registryKey: Secret;
  /** Its name, as the Lambda looks it up (`onramp/registry-key`). */
  readonly registryKeyName: string;
  /** Product secrets are `${productSecretPrefix}${productKey}` (`onramp/products/`). */
  readonly productSecretPrefix: string;
  /** `arn:${Partition}:secretsmanager:${Region}:${Account}:secret:onramp/products/*`. */
  readonly productSecretArnPattern: string;

  constructor(scope: Construct, id: string, props: OnrampSecretsProps = {}) {
    super(scope, id);
    const names = props.names ?? defaultSecretNames;
    this.registryKeyName = names.registryKeyName;
    this.productSecretPrefix = names.productSecretPrefix;
    this.registryKey = new Secret(this, "RegistryKey", {
      secretName: names.registryKeyName,
      description: "iot-onramp registry key: 32 random bytes, base64 (seals per-device secrets)",
      generateSecretString: {
        passwordLength: REGISTRY_KEY_BASE64_LENGTH,
        excludeCharacters: NON_BASE64_PUNCTUATION,
        includeSpace: false,
        requireEachIncludedType: false,
      },
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.productSecretArnPattern = Stack.of(this).formatArn({
      service: "secretsmanager",
      resource: "secret",
      resourceName: `${names.productSecretPrefix}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }
}
