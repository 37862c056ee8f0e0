/**
 * The environment variables the Lambda wiring (`lambdas/entrypoints/lambda-wiring.ts`) requires.
 * The wiring reads them by name and fails fast when one is missing; the constructs set them and the
 * bench sets dummy values so a bundle can be loaded outside Lambda. `test/lib/vend-function.test.ts`
 * checks that every `requireEnv("…")` of the wiring is listed here.
 */
export const LAMBDA_SETTINGS = {
  /** Name of the registry table (DynamoDB). */
  registryTableName: "REGISTRY_TABLE_NAME",
  /** Prefix of the product secrets in Secrets Manager (`onramp/products/`). */
  productSecretPrefix: "PRODUCT_SECRET_PREFIX",
  /** Name of the registry key secret (`onramp/registry-key`). */
  registryKeySecretName: "REGISTRY_KEY_SECRET_NAME",
  /** Name of the binding table (DynamoDB; the binding Lambdas only). */
  bindingTableName: "BINDING_TABLE_NAME",
} as const;

/** Every setting name in {@link LAMBDA_SETTINGS}. */
export const LAMBDA_SETTING_NAMES: readonly string[] = Object.values(LAMBDA_SETTINGS);
