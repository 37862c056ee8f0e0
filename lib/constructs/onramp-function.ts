import { join } from "node:path";
import { type Duration, RemovalPolicy } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { type PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import {
  ENTRYPOINTS_DIR,
  LAMBDA_NODE_OPTIONS,
  LAMBDA_RUNTIME,
  LOCK_FILE,
  nodejsFunctionBundling,
  PROJECT_ROOT,
} from "../bundling.ts";
import { LAMBDA_SETTINGS } from "../lambda-settings.ts";

/** What differs between the Lambdas of this project; everything else is {@link createOnrampFunction}'s. */
export type OnrampFunctionProps = {
  /** File name in `lambdas/entrypoints/` (`vend-certificate.ts`); its `handler` export is the handler. */
  entry: string;
  /** Powertools service name (the `service` key of every log line). */
  serviceName: string;
  description: string;
  timeout: Duration;
  /** MB (default 512: more memory is more CPU, which shortens the cold start). */
  memorySize?: number;
  /** Settings the entry's wiring requires (names from lib/lambda-settings.ts). */
  environment: Record<string, string>;
  /** Execution role description. */
  roleDescription: string;
  logRetention: RetentionDays;
  /** Of the log group (default RETAIN). */
  removalPolicy?: RemovalPolicy;
  /** Reserved concurrency; unset by default (see the JITR construct for why). */
  reservedConcurrentExecutions?: number;
};

/** A function made by {@link createOnrampFunction}, with its role and log group. */
export type OnrampFunctionParts = {
  function: NodejsFunction;
  /** Its execution role: no managed policies; the caller adds exactly what the entry calls. */
  role: Role;
  /** Its own log group, with explicit retention. */
  logGroup: LogGroup;
};

/**
 * The settings every Lambda of this project shares, in one place: Node.js 22 on arm64, the ESM
 * bundle of lib/bundling.ts (local esbuild, templates copied next to it), source-mapped stack
 * traces, Powertools logging at INFO, its own log group and its own role (allowed to write to
 * that log group only). Creates `Logs`, `Role` and `Function` in `scope` (a construct per Lambda),
 * so the logical ids are `{scope}Logs…`, `{scope}Role…`, `{scope}Function…`.
 */
export function createOnrampFunction(scope: Construct, props: OnrampFunctionProps): OnrampFunctionParts {
  const logGroup = new LogGroup(scope, "Logs", {
    retention: props.logRetention,
    removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
  });
  const role = new Role(scope, "Role", {
    assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
    description: props.roleDescription,
  });
  const fn = new NodejsFunction(scope, "Function", {
    entry: join(ENTRYPOINTS_DIR, props.entry),
    handler: "handler",
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: LOCK_FILE,
    runtime: LAMBDA_RUNTIME,
    architecture: Architecture.ARM_64,
    memorySize: props.memorySize ?? 512,
    timeout: props.timeout,
    description: props.description,
    role,
    logGroup,
    bundling: nodejsFunctionBundling(),
    ...(props.reservedConcurrentExecutions !== undefined
      ? { reservedConcurrentExecutions: props.reservedConcurrentExecutions }
      : {}),
    environment: {
      ...props.environment,
      POWERTOOLS_SERVICE_NAME: props.serviceName,
      POWERTOOLS_LOG_LEVEL: "INFO",
      NODE_OPTIONS: LAMBDA_NODE_OPTIONS,
    },
  });
  logGroup.grantWrite(role);
  return { function: fn, role, logGroup };
}

/**
 * The settings every registry-backed function construct takes (vend, registration, authorizer,
 * pre-provisioning hook, JITR, fleet commit, rotation): the three registry settings the shared
 * Lambda wiring reads (`lambdaServices()`), the log group's retention and removal policy, and the
 * optional reserved concurrency.
 */
export type RegistryFunctionSettings = {
  table: ITable;
  productSecretPrefix: string;
  registryKeySecretName: string;
  logRetention: RetentionDays;
  /** Of the log group (default RETAIN). */
  removalPolicy?: RemovalPolicy;
  /** Reserved concurrency; unset by default. */
  reservedConcurrentExecutions?: number;
};

/** What differs between the registry-backed functions: the entry, its names and what it calls. */
export type RegistryFunctionSpec = Pick<
  OnrampFunctionProps,
  "entry" | "serviceName" | "description" | "roleDescription" | "timeout"
> & {
  /** What the function calls (added to its role after its log-group grant, in this order). */
  statements: readonly PolicyStatement[];
};

/** The registry settings as the Lambda environment (names from lib/lambda-settings.ts). */
export function registryEnvironment(settings: RegistryFunctionSettings): Record<string, string> {
  return {
    [LAMBDA_SETTINGS.registryTableName]: settings.table.tableName,
    [LAMBDA_SETTINGS.productSecretPrefix]: settings.productSecretPrefix,
    [LAMBDA_SETTINGS.registryKeySecretName]: settings.registryKeySecretName,
  };
}

/**
 * The {@link OnrampFunctionProps} of a registry-backed function: {@link registryEnvironment}, the
 * log settings, and the reserved concurrency only when set.
 */
export function registryFunctionProps(
  settings: RegistryFunctionSettings,
  spec: Omit<RegistryFunctionSpec, "statements">,
): OnrampFunctionProps {
  return {
    entry: spec.entry,
    serviceName: spec.serviceName,
    description: spec.description,
    roleDescription: spec.roleDescription,
    timeout: spec.timeout,
    environment: registryEnvironment(settings),
    logRetention: settings.logRetention,
    ...(settings.removalPolicy ? { removalPolicy: settings.removalPolicy } : {}),
    ...(settings.reservedConcurrentExecutions !== undefined
      ? { reservedConcurrentExecutions: settings.reservedConcurrentExecutions }
      : {}),
  };
}

/**
 * An onramp function with the registry environment whose role gets exactly `spec.statements`
 * (after the log-group grant). Creates `Logs`, `Role` and `Function` in `scope`.
 */
export function createRegistryFunction(
  scope: Construct,
  settings: RegistryFunctionSettings,
  spec: RegistryFunctionSpec,
): OnrampFunctionParts {
  const { statements, ...names } = spec;
  const parts = createOnrampFunction(scope, registryFunctionProps(settings, names));
  for (const statement of statements) parts.role.addToPrincipalPolicy(statement);
  return parts;
}

/**
 * A construct around one {@link createRegistryFunction} function: `function`, `role` and
 * `logGroup`, with the logical ids `{id}Logs…`, `{id}Role…`, `{id}Function…`. `statements` is
 * given the construct itself (the scope of the ARNs it builds).
 */
export class RegistryFunction extends Construct {
  /** The function. */
  readonly function: NodejsFunction;
  /** Its execution role (no managed policies). */
  readonly role: Role;
  /** Its log group (explicit retention). */
  readonly logGroup: LogGroup;

  constructor(
    scope: Construct,
    id: string,
    settings: RegistryFunctionSettings,
    spec: Omit<RegistryFunctionSpec, "statements"> & {
      statements: (self: Construct) => readonly PolicyStatement[];
    },
  ) {
    super(scope, id);
    const parts = createRegistryFunction(this, settings, { ...spec, statements: spec.statements(this) });
    this.function = parts.function;
    this.role = parts.role;
    this.logGroup = parts.logGroup;
  }
}
