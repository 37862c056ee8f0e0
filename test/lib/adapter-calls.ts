/**
 * The AWS IoT actions an adapter method sends, read from lambdas/adapters/iot-provisioning.ts, so
 * a role's grants can be checked against what the code calls (not against a list kept by hand).
 */
import { readFileSync } from "node:fs";

const IOT_ADAPTER = new URL("../../lambdas/adapters/iot-provisioning.ts", import.meta.url);

/**
 * The adapter methods a port type picks: every `"name"` inside `iot: Pick<IotProvisioning, ...>`
 * (or `Pick<IotProvisioning, ...>` alone) in a file of lambdas/, relative to the project root.
 */
export function pickedIotMethods(file: string): string[] {
  const source = readFileSync(new URL(`../../${file}`, import.meta.url), "utf8");
  return [...source.matchAll(/Pick<IotProvisioning, ([^>]+)>/g)].flatMap((m) =>
    [...(m[1] ?? "").matchAll(/"(\w+)"/g)].map((n) => n[1]!),
  );
}

/**
 * `iot:{Name}` for every `new {Name}Command(` in the bodies of the given methods of the IoT
 * adapter (a method's body ends at the first line that is exactly `  }`).
 */
export function iotAdapterActions(methods: readonly string[]): Set<string> {
  const adapter = readFileSync(IOT_ADAPTER, "utf8");
  const actions = new Set<string>();
  for (const method of methods) {
    const start = adapter.search(new RegExp(`\\n  (private )?(async )?${method}\\(`));
    if (start < 0) throw new Error(`iot-provisioning.ts has no method ${method}`);
    const body = adapter.slice(start);
    for (const m of body.slice(0, body.indexOf("\n  }\n")).matchAll(/new (\w+)Command\(/g)) {
      actions.add(`iot:${m[1]}`);
    }
  }
  return actions;
}

/**
 * The adapter methods behind `ClaimDeps["iot"]` (lambdas/core/registry/claims.ts): what settling
 * or committing a fleet claim can call, with the private helpers they use.
 */
export const CLAIM_IOT_METHODS = [
  "inspectCertificate",
  "describeCertificate",
  "setCertificateStatus",
  "destroyCertificate",
  "detachArn",
] as const;

/**
 * The adapter methods behind `RotationDeps["iot"]` (lambdas/core/rotation/rotate-certificate.ts:
 * the claim's, registerDeviceThing's and its own picks) plus `getDataEndpoint`, which the entry
 * calls to find where to publish the answer.
 */
export const ROTATION_IOT_METHODS = [
  ...CLAIM_IOT_METHODS,
  "createCertificateFromCsr",
  "registerThing",
  "describeThing",
  "getDataEndpoint",
] as const;

const REGISTRY_ADAPTER = new URL("../../lambdas/adapters/dynamodb-registry.ts", import.meta.url);

/** The DynamoDB action of each document-client command the registry adapter sends. */
const DYNAMODB_ACTIONS: Readonly<Record<string, string>> = {
  Get: "dynamodb:GetItem",
  Put: "dynamodb:PutItem",
  Update: "dynamodb:UpdateItem",
  Delete: "dynamodb:DeleteItem",
  Query: "dynamodb:Query",
  TransactWrite: "dynamodb:TransactWriteItems",
  BatchWrite: "dynamodb:BatchWriteItem",
};

/**
 * The registry methods a use case calls: every `registry.{name}(` in a file of lambdas/ (relative
 * to the project root), sorted, without repeats.
 */
export function registryMethodsCalled(file: string): string[] {
  const source = readFileSync(new URL(`../../${file}`, import.meta.url), "utf8");
  return [...new Set([...source.matchAll(/registry\.(\w+)\(/g)].map((m) => m[1]!))].sort();
}

/**
 * `dynamodb:{Action}` for every `new {Name}Command(` in the bodies of the given methods of the
 * registry adapter (lambdas/adapters/dynamodb-registry.ts), and UpdateItem for a method that goes
 * through its `conditionalUpdate` helper or `updateIf` (lambdas/adapters/dynamodb-items.ts). A
 * command without a known action fails the caller.
 */
export function registryAdapterActions(methods: readonly string[]): Set<string> {
  const adapter = readFileSync(REGISTRY_ADAPTER, "utf8");
  const actions = new Set<string>();
  for (const method of methods) {
    const start = adapter.search(new RegExp(`\\n  (private )?(async )?${method}\\(`));
    if (start < 0) throw new Error(`dynamodb-registry.ts has no method ${method}`);
    const tail = adapter.slice(start);
    const body = tail.slice(0, tail.indexOf("\n  }\n"));
    for (const m of body.matchAll(/new (\w+)Command\(/g)) {
      const action = DYNAMODB_ACTIONS[m[1]!];
      if (!action) throw new Error(`${method}: no DynamoDB action known for ${m[1]}Command`);
      actions.add(action);
    }
    if (/this\.conditionalUpdate\(|\bupdateIf\(/.test(body)) actions.add("dynamodb:UpdateItem");
  }
  return actions;
}
