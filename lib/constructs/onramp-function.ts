import { join } from "node:path";
import { type Duration, RemovalPolicy } from "aws-cdk-lib";
import { Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import {
  ENTRYPOINTS_DIR,
  LAMBDA_NODE_OPTIONS,
  LAMBDA_RUNTIME,
  LOCK_FILE,
  nodejsFunctionBundling,
  PROJECT_ROOT,
} from "../bundling.ts";

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
