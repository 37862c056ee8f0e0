import * as z from "zod/mini";
import { commitFleetProvisioning, type FleetCommitOutcome } from "#core/fleet/commit-fleet-provisioning.ts";
import type { Logger } from "#core/logger.ts";
import { METRIC, type Metrics, noMetrics, timed } from "#core/metrics.ts";
import type { ClaimDeps } from "#core/registry/claims.ts";

/**
 * A connect lifecycle event as AWS IoT publishes it on `$aws/events/presence/connected/{clientId}`
 * (https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html): for a client
 * that authenticated with an X.509 certificate, `principalIdentifier` is the certificate id.
 * Other fields (sessionIdentifier, ipAddress, versionNumber...) are kept but unused.
 */
export const presenceEventSchema = z.looseObject({
  clientId: z.string().check(z.minLength(1), z.maxLength(128)),
  eventType: z.string(),
  principalIdentifier: z.string(),
});

/**
 * Fleet provisioning's commit Lambda (phase two of the two-phase record). Events that are not a
 * certificate connection are ignored; a dependency failure is rethrown so the asynchronous
 * invocation is retried (and dead-lettered at last); the log has ids only.
 */
export function makeFleetCommitHandler(deps: ClaimDeps & { logger: Logger; metrics?: Metrics }) {
  const metrics = deps.metrics ?? noMetrics;
  const handle = makeFleetCommit(deps);
  return (event: unknown): Promise<FleetCommitOutcome> =>
    timed(metrics, async () => {
      const result = await handle(event);
      metrics.count(METRIC.fleetCommits, {
        outcome: result.outcome === "ignored" ? `ignored:${result.reason}` : result.outcome,
      });
      return result;
    });
}

function makeFleetCommit(deps: ClaimDeps & { logger: Logger }) {
  return async (event: unknown): Promise<FleetCommitOutcome> => {
    const parsed = presenceEventSchema.safeParse(event);
    if (!parsed.success || parsed.data.eventType !== "connected") {
      return { outcome: "ignored", reason: "not-a-device" };
    }
    const certificateId = parsed.data.principalIdentifier.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(certificateId)) return { outcome: "ignored", reason: "not-a-device" };
    try {
      return await commitFleetProvisioning(deps, { clientId: parsed.data.clientId, certificateId });
    } catch (error) {
      deps.logger.error("fleet commit failed; the event will be retried", {
        clientId: parsed.data.clientId,
        certificateId,
        error: error instanceof Error ? error.name : "unknown",
      });
      throw error;
    }
  };
}
