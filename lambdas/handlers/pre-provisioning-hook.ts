import { authorizeFleetProvisioning, type FleetHookDeps } from "#core/fleet/authorize-fleet-provisioning.ts";
import {
  DENY_PROVISIONING,
  type PreProvisioningResponse,
  preProvisioningEventSchema,
} from "#core/fleet/pre-provisioning-event.ts";
import { METRIC, type Metrics, noMetrics, timed } from "#core/metrics.ts";

/**
 * The pre-provisioning hook of the fleet provisioning (by claim) template: AWS IoT invokes it
 * synchronously for every provision request and waits at most 5 s. Parses the input and asks the
 * use case; a malformed input, a refusal and any failure all answer `{allowProvisioning: false}`
 * without throwing (a thrown error would fail the request too, but slower and with a noisier log).
 * Logs one line per decision with ids only: never the certificate PEM or the whole event.
 */
export function makePreProvisioningHookHandler(deps: FleetHookDeps & { metrics?: Metrics }) {
  const metrics = deps.metrics ?? noMetrics;
  const decide = (decision: "allow" | "deny", reason: string) =>
    metrics.count(METRIC.fleetHookDecisions, { decision, reason });
  return (event: unknown): Promise<PreProvisioningResponse> =>
    timed(metrics, () => hookDecision(deps, event, decide));
}

async function hookDecision(
  deps: FleetHookDeps,
  event: unknown,
  decide: (decision: "allow" | "deny", reason: string) => void,
): Promise<PreProvisioningResponse> {
  try {
    const parsed = preProvisioningEventSchema.safeParse(event);
    if (!parsed.success) {
      decide("deny", "malformed-event");
      deps.logger.warn("fleet hook: malformed input, denied", {
        reason: "malformed-event",
        issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "event"}: ${i.message}`),
      });
      return DENY_PROVISIONING;
    }
    const request = parsed.data;
    const ids = {
      certificateId: request.certificateId,
      claimCertificateId: request.claimCertificateId,
      clientId: request.clientId,
    };
    const decision = await authorizeFleetProvisioning(deps, request);
    if (!decision.allowed) {
      const level = decision.reason === "registry-error" || decision.reason === "deadline-exceeded";
      decide("deny", decision.reason);
      deps.logger[level ? "error" : "warn"]("fleet hook: provisioning denied", { ...ids, ...decision });
      return DENY_PROVISIONING;
    }
    decide("allow", "allowed");
    deps.logger.info("fleet hook: provisioning allowed", {
      ...ids,
      serialNumber: decision.serialNumber,
      productKey: decision.productKey,
    });
    return { allowProvisioning: true, parameterOverrides: decision.parameterOverrides };
  } catch (error) {
    decide("deny", "unexpected-failure");
    deps.logger.error("fleet hook: unexpected failure, denied", {
      error: error instanceof Error ? error.name : "unknown",
    });
    return DENY_PROVISIONING;
  }
}
