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
