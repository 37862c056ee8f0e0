import { App, type AppProps, Tags, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { type OnrampConfig, readOnrampConfig } from "./config.ts";
import { stackNames } from "./outputs.ts";
import { ProvisioningStack } from "./provisioning-stack.ts";
import { RegistryStack } from "./registry-stack.ts";

/** The app and its two stacks. */
export type OnrampApp = {
  app: App;
  config: OnrampConfig;
  registry: RegistryStack;
  provisioning: ProvisioningStack;
};

/**
 * Builds the iot-onramp CDK app: `{prefix}-Registry` (stateful) and `{prefix}-Provisioning`
 * (stateless, wired to the registry by props), checked by cdk-nag's AWS Solutions rules.
 * Synthesis needs no AWS credentials: without CDK_DEFAULT_ACCOUNT/REGION or the `account`/`region`
 * context the stacks are environment-agnostic. See lib/config.ts for the context keys.
 */
export function createOnrampApp(
  props: AppProps = {},
  environment: NodeJS.ProcessEnv = process.env,
): OnrampApp {
  const app = new App({
    ...props,
    context: {
      // Cross-stack references (table, secret) stay CloudFormation exports: the registry stack
      // cannot drop a value the provisioning stack still imports.
      "@aws-cdk/core:defaultCrossStackReferences": "strong",
      ...props.context,
    },
  });
  const config = readOnrampConfig(app.node, environment);
  const env = Object.keys(config.env).length > 0 ? { env: config.env } : {};

  const names = stackNames(config.prefix);
  const registry = new RegistryStack(app, names.registry, {
    ...env,
    exportPrefix: config.prefix,
    destroyOnRemoval: config.destroyOnRemoval,
    tableEncryption: config.tableEncryption,
  });
  const provisioning = new ProvisioningStack(app, names.provisioning, {
    ...env,
    exportPrefix: config.prefix,
    table: registry.table,
    bindingTable: registry.bindingTable,
    phone: config.phone,
    ...(registry.tableEncryptionKey ? { tableEncryptionKey: registry.tableEncryptionKey } : {}),
    registryKeySecret: registry.secrets.registryKey,
    registryKeySecretName: registry.secrets.registryKeyName,
    productSecretPrefix: registry.secrets.productSecretPrefix,
    productSecretArnPattern: registry.secrets.productSecretArnPattern,
    api: config.api,
    thingNamePrefix: config.thingNamePrefix,
    iotQuotas: config.iotQuotas,
    ...(config.alarmEmail ? { alarmEmail: config.alarmEmail } : {}),
    ...(config.authorizerReservedConcurrency !== undefined
      ? { authorizerReservedConcurrency: config.authorizerReservedConcurrency }
      : {}),
    ...(config.coapGateway ? { coapGateway: config.coapGateway } : {}),
    logRetention: config.logRetention,
    destroyOnRemoval: config.destroyOnRemoval,
  });
  provisioning.addStackDependency(
    registry,
    "the Lambdas use the registry table; the vend, registration and authorizer Lambdas the secrets too",
  );

  Tags.of(app).add("app", "iot-onramp");
  // cdk-nag 3 is a policy validation plugin (v2 was an aspect): synthesis fails on any finding
  // that is not acknowledged with a reason.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, config, registry, provisioning };
}
