import { Duration, type RemovalPolicy } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { secretReadStatement, tableKeyStatements } from "../iam-grants.ts";
import { RegistryFunction } from "./onramp-function.ts";

/** Settings of {@link RegisterDeviceFunction}: the registry resources it uses, by reference. */
export type RegisterDeviceFunctionProps = {
  table: ITable;
  /** The table's customer managed key, if any. */
  tableEncryptionKey?: IKey;
  registryKeySecretArn: string;
  registryKeySecretName: string;
  productSecretPrefix: string;
  /** `arn:…:secret:onramp/products/*`: product secrets are created later by the CLI. */
  productSecretArnPattern: string;
  logRetention: RetentionDays;
  /** Of the log group. */
  removalPolicy?: RemovalPolicy;
};

/**
 * API Gateway gives up after 29 s; a registration is a few reads, one conditional write and at
 * most five attempts of it (concurrent registrations of one device), so 28 s is a ceiling, as for
 * the vend function.
 */
export const REGISTER_DEVICE_TIMEOUT = Duration.seconds(28);

/**
 * The Lambda behind `POST /auth/register/device` (`lambdas/entrypoints/register-device.ts`):
 * Alibaba-style dynamic registration over HTTPS of pre-registered devices (`register`, answering
 * the device secret), with the shared function settings and a role that allows exactly what the
 * HTTPS path calls ({@link registerDeviceStatements}).
 */
export class RegisterDeviceFunction extends RegistryFunction {
  constructor(scope: Construct, id: string, props: RegisterDeviceFunctionProps) {
    super(scope, id, props, {
      entry: "register-device.ts",
      serviceName: "register-device",
      description: "iot-onramp: POST /auth/register/device (dynamic registration, Alibaba-style)",
      roleDescription: "iot-onramp register-device function",
      timeout: REGISTER_DEVICE_TIMEOUT,
      statements: () => registerDeviceStatements(props),
    });
  }
}

/**
 * Least privilege for the HTTPS registration, derived from lambdas/handlers/register-device.ts,
 * which calls `registerDevice` with `authType: "register"` only, and from
 * lambdas/core/registration/register-device.ts on that path:
 * - dynamodb-registry.ts: getProduct and getDevice (GetItem), issueCredential (UpdateItem,
 *   conditional on version and status). No PutItem: `createDevice` is reached only for `regnwl`
 *   (registration without pre-registration), which the HTTPS endpoint does not offer (the local
 *   MQTT endpoint does); a handler that starts passing `regnwl` needs `dynamodb:PutItem` here
 *   (test/lib/vending-api.test.ts checks the handler's authType).
 * - secrets-manager-store.ts: GetSecretValue of the product secret (the request's signature) and
 *   of the registry key (sealing the new secret, opening a repeated registration's).
 * - no AWS IoT: registration issues a credential; the thing is made by the authorizer at the first
 *   login.
 */
export function registerDeviceStatements(props: RegisterDeviceFunctionProps): PolicyStatement[] {
  return [
    new PolicyStatement({
      sid: "RegistryTableItems",
      effect: Effect.ALLOW,
      actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
      resources: [props.table.tableArn],
    }),
    secretReadStatement({
      productSecretArnPattern: props.productSecretArnPattern,
      registryKeySecretArn: props.registryKeySecretArn,
    }),
    ...tableKeyStatements(props.tableEncryptionKey, "read-write"),
  ];
}
