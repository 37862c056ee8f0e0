import * as z from "zod/mini";
import { type AuthorizerDeps, authorizeMqttConnect } from "#core/authorizer/authorize-mqtt-connect.ts";
import { recordFirstLogin } from "#core/authorizer/record-first-login.ts";
import { METRIC, type Metrics, noMetrics, timed } from "#core/metrics.ts";
import type { Registry } from "#core/registry/ports.ts";
import type { IotProvisioning } from "#core/vending/ports.ts";

/**
 * What AWS IoT sends a custom authorizer for an MQTT connection
 * (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html): the CONNECT's
 * username, password (base64) and client id under `protocolData.mqtt`. Other fields are kept.
 */
const authorizerEventSchema = z.looseObject({
  protocolData: z.optional(
    z.looseObject({
      mqtt: z.optional(
        z.looseObject({
          username: z.optional(z.string()),
          password: z.optional(z.string()),
          clientId: z.optional(z.string()),
        }),
      ),
    }),
  ),
});

/** The authorizer's answer (the same page): at most 10 policy documents of 2,048 characters each. */
export type AuthorizerResponse = {
  isAuthenticated: boolean;
  principalId: string;
  policyDocuments: string[];
  disconnectAfterInSeconds: number;
  refreshAfterInSeconds: number;
};

/** A session lasts a day at most; the policy is re-evaluated hourly (both within AWS's 300–86,400 s). */
export const SESSION_SECONDS = { disconnectAfter: 86_400, refreshAfter: 3_600 } as const;

const DENY: AuthorizerResponse = Object.freeze({
  isAuthenticated: false,
  principalId: "denied",
  policyDocuments: [],
  disconnectAfterInSeconds: 300,
  refreshAfterInSeconds: 300,
});

/**
 * The AWS IoT custom authorizer Lambda for devices born with a secret. Never throws (a thrown
 * error would be a denial anyway) and never logs the password or the whole event: one line per
 * decision with the product key, the device name and the reason.
 */
export function makeCustomAuthorizerHandler(
  deps: AuthorizerDeps & {
    registry: Registry;
    iot: Pick<IotProvisioning, "createThing" | "describeThing">;
    metrics?: Metrics;
  },
) {
  const metrics = deps.metrics ?? noMetrics;
  const decide = (decision: "allow" | "deny", reason: string) =>
    metrics.count(METRIC.authorizerDecisions, { decision, reason });
  return (event: unknown): Promise<AuthorizerResponse> =>
    timed(metrics, () => authorize(deps, event, decide));
}

async function authorize(
  deps: AuthorizerDeps & { registry: Registry; iot: Pick<IotProvisioning, "createThing" | "describeThing"> },
  event: unknown,
  decide: (decision: "allow" | "deny", reason: string) => void,
): Promise<AuthorizerResponse> {
  const parsed = authorizerEventSchema.safeParse(event);
  const mqtt = parsed.success ? parsed.data.protocolData?.mqtt : undefined;
  if (!mqtt) {
    decide("deny", "malformed");
    deps.logger.warn("authorizer: no MQTT credentials, denied", { reason: "malformed" });
    return DENY;
  }
  const decision = await authorizeMqttConnect(deps, mqtt, { passwordEncoding: "base64" });
  if (!decision.allowed) {
    decide("deny", decision.reason);
    deps.logger.warn("authorizer: denied", {
      reason: decision.reason,
      username: mqtt.username?.slice(0, 160),
    });
    return DENY;
  }
  const { grant } = decision;
  if (grant.firstLogin) {
    await recordFirstLogin(
      deps,
      grant.product,
      grant.serialNumber,
      new Date((deps.clock ?? Date.now)()).toISOString(),
    );
  }
  decide("allow", grant.activationOnly ? "activation-only" : grant.request.scheme);
  deps.logger.info("authorizer: allowed", {
    serialNumber: grant.serialNumber,
    productKey: grant.productKey,
    scheme: grant.request.scheme,
    ...(grant.activationOnly ? { activationOnly: true } : {}),
  });
  return {
    isAuthenticated: true,
    principalId: grant.principalId,
    policyDocuments: grant.policyDocuments,
    disconnectAfterInSeconds: SESSION_SECONDS.disconnectAfter,
    refreshAfterInSeconds: SESSION_SECONDS.refreshAfter,
  };
}
