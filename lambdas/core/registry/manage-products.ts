import { randomBytes } from "node:crypto";
import { ConflictError, NotFoundError, ValidationError } from "../errors.ts";
import type { CaRegistry } from "../jitr/ports.ts";
import type { TemplateSource } from "../vending/ports.ts";
import {
  type MqttAuth,
  type Product,
  type ProductAuthMode,
  type ProductBinding,
  productSchema,
  type ReprovisionPolicy,
} from "./model.ts";
import type { Registry, SecretStore } from "./ports.ts";

export type NewProduct = {
  productKey: string;
  name: string;
  /** How its devices log in with a secret over MQTT (custom authorizer); absent: certificates. */
  mqttAuth?: MqttAuth;
  rotationGraceSeconds?: number;
  /** Device–user binding (DEFAULT_PRODUCT_BINDING when absent). */
  binding?: ProductBinding;
  authMode?: ProductAuthMode;
  allowServerKeys?: boolean;
  templateName?: string;
  policyName?: string;
  reprovision?: ReprovisionPolicy;
  trustedCaIds?: string[];
  /** The product secret; 32 random bytes (base64) when absent. */
  secret?: string;
};

export const DEFAULT_TEMPLATE_NAME = "cvm-device";
export const DEFAULT_POLICY_NAME = "onramp-device-policy";

/** A fresh product secret: 32 random bytes, base64 (usable as an HMAC group key). */
export function newProductSecret(): string {
  return randomBytes(32).toString("base64");
}

/** An AWS IoT certificate id (of a CA too): 64 lowercase hexadecimal characters. */
const CERTIFICATE_ID = /^[0-9a-f]{64}$/;

/**
 * What `createProduct` checks a new product against, when given: the provisioning template must
 * exist and every trusted CA must be registered in AWS IoT, so a mistake shows at creation rather
 * than at the first device.
 */
export type ProductChecks = {
  templates?: TemplateSource;
  caRegistry?: Pick<CaRegistry, "describeCaCertificate">;
};

/**
 * Creates a product and its secret. The secret is created first with a conditional create; if it
 * exists but the product row does not, an earlier attempt was interrupted and this one resumes
 * with the stored secret, so a retry is safe and never replaces a secret.
 */
export async function createProduct(
  deps: { registry: Registry; secrets: SecretStore } & ProductChecks,
  input: NewProduct,
): Promise<{ product: Product; secret: string; resumed: boolean }> {
  const parsed = productSchema.safeParse({
    productKey: input.productKey,
    name: input.name,
    authMode: input.authMode ?? "device-secret",
    allowServerKeys: input.allowServerKeys ?? false,
    templateName: input.templateName ?? DEFAULT_TEMPLATE_NAME,
    policyName: input.policyName ?? DEFAULT_POLICY_NAME,
    reprovision: input.reprovision ?? "never",
    trustedCaIds: input.trustedCaIds ?? [],
    ...(input.mqttAuth ? { mqttAuth: input.mqttAuth } : {}),
    ...(input.rotationGraceSeconds ? { rotationGraceSeconds: input.rotationGraceSeconds } : {}),
    ...(input.binding ? { binding: input.binding } : {}),
    createdAt: new Date().toISOString(),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ValidationError(`Invalid product ${String(issue.path[0])}: ${issue.message}`);
  }
  const product = parsed.data;
  if (
    product.authMode === "product-secret" &&
    (product.mqttAuth?.scheme === "aliyun" ||
      (product.mqttAuth?.scheme === "enos" && !product.mqttAuth.dynamicActivation))
  ) {
    // A device logs in with its device secret: with one secret for the product, any device could
    // log in as any other. (aliyun-dynamic registration and EnOS dynamic activation issue each
    // device its own secret; until then it cannot log in.)
    throw new ValidationError(
      `Invalid product mqttAuth: ${product.mqttAuth.scheme} logins need a per-device secret (authMode device-secret).`,
    );
  }
  if (product.authMode === "product-secret" && product.reprovision === "replace") {
    // One secret for the whole product: anyone holding it could sign for any serial, so with
    // `replace` they could take over a provisioned device. Such products are "register once",
    // as Alibaba's one-secret-per-product dynamic registration is.
    throw new ValidationError(
      "Invalid product reprovision: product-secret products are register-once; `replace` needs a per-device secret (authMode device-secret).",
    );
  }
  if (input.secret !== undefined && !isUsableSecret(input.secret, product.authMode)) {
    throw new ValidationError(
      product.authMode === "device-secret"
        ? "Invalid product secret: device-secret products need a base64 secret of at least 16 bytes (it keys the per-device derivation)."
        : "Invalid product secret: at least 16 characters.",
    );
  }
  for (const caId of product.trustedCaIds) {
    if (!CERTIFICATE_ID.test(caId)) {
      throw new ValidationError(
        `Invalid product trustedCaIds: "${caId}" is not a CA certificate id (64 lowercase hexadecimal characters, as \`onramp ca register\` prints).`,
      );
    }
  }
  if (deps.templates) {
    try {
      await deps.templates.load(product.templateName);
    } catch (error) {
      if (error instanceof NotFoundError) {
        throw new ValidationError(
          `Invalid product templateName: there is no provisioning template named ${product.templateName} (\`onramp template list\` shows them).`,
        );
      }
      throw error;
    }
  }
  if (deps.caRegistry) {
    for (const caId of product.trustedCaIds) {
      if (!(await deps.caRegistry.describeCaCertificate(caId))) {
        throw new ValidationError(
          `Invalid product trustedCaIds: no CA certificate ${caId} is registered in AWS IoT (register it with \`onramp ca register\` first).`,
        );
      }
    }
  }
  if (await deps.registry.getProduct(product.productKey)) {
    throw new ConflictError("PRODUCT_EXISTS", `Product ${product.productKey} already exists.`);
  }
  let secret = input.secret ?? newProductSecret();
  const created = await deps.secrets.createProductSecret(product.productKey, secret);
  if (!created) secret = (await deps.secrets.getProductSecret(product.productKey)) ?? secret;
  await deps.registry.createProduct(product);
  return { product, secret, resumed: !created };
}

function isUsableSecret(secret: string, authMode: ProductAuthMode): boolean {
  if (authMode === "product-secret") return secret.length >= 16;
  return (
    /^[A-Za-z0-9+/]+={0,2}$/.test(secret) &&
    secret.length % 4 === 0 &&
    Buffer.from(secret, "base64").length >= 16
  );
}
