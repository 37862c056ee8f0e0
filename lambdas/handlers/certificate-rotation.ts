import * as z from "zod/mini";
import { METRIC, type Metrics, noMetrics, timed } from "#core/metrics.ts";
import type { DevicePublisher } from "#core/rotation/ports.ts";
import { rotationTopics } from "#core/rotation/ports.ts";
import {
  type RotationAnswer,
  type RotationDeps,
  rotateCertificate,
} from "#core/rotation/rotate-certificate.ts";

/**
 * The message the rotation rule delivers: the device's JSON `{ requestId?, csr }` plus what the
 * rule's SELECT adds (`topic(2) AS thingName`, `principal() AS principal`).
 */
export const rotationEventSchema = z.object({
  csr: z.string().check(z.minLength(1), z.maxLength(16_384)),
  requestId: z.optional(z.string().check(z.regex(/^[A-Za-z0-9_.:-]{1,64}$/))),
  thingName: z.string().check(z.regex(/^[A-Za-z0-9:_-]{1,128}$/)),
  principal: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
});

/**
 * Certificate rotation's Lambda, the target of templates/rules/certificate-rotation.json. Parses
 * the event, asks the use case, and publishes the answer to the device's
 * `things/{thingName}/certificates/rotate/accepted` or `/rejected` (the device policy lets it
 * subscribe there). A malformed request gets a `rejected` answer when its thing is known from the
 * topic, and nothing otherwise; the log has ids only.
 */
export function makeCertificateRotationHandler(
  deps: RotationDeps & { publisher: DevicePublisher; metrics?: Metrics },
) {
  const metrics = deps.metrics ?? noMetrics;
  const handle = makeRotation(deps);
  return (event: unknown): Promise<RotationAnswer | undefined> =>
    timed(metrics, async () => {
      const answer = await handle(event);
      metrics.count(METRIC.rotations, {
        outcome: answer === undefined ? "UNANSWERED" : answer.accepted ? "ACCEPTED" : answer.code,
      });
      return answer;
    });
}

function makeRotation(deps: RotationDeps & { publisher: DevicePublisher }) {
  return async (event: unknown): Promise<RotationAnswer | undefined> => {
    const parsed = rotationEventSchema.safeParse(event);
    if (!parsed.success) {
      const thingName = (event as { thingName?: unknown } | null)?.thingName;
      deps.logger.warn("rotation: malformed request", {
        issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "event"}: ${i.message}`),
      });
      if (typeof thingName !== "string" || !/^[A-Za-z0-9:_-]{1,128}$/.test(thingName)) return undefined;
      const answer: RotationAnswer = {
        accepted: false,
        code: "INVALID_CSR",
        message: "The request must be JSON { requestId?, csr } with a PEM CSR.",
      };
      await deps.publisher.publish(rotationTopics.rejected(thingName), answer);
      return answer;
    }
    const request = parsed.data;
    const answer = await rotateCertificate(deps, {
      thingName: request.thingName,
      principal: request.principal,
      csr: request.csr,
      ...(request.requestId ? { requestId: request.requestId } : {}),
    });
    const topic = answer.accepted
      ? rotationTopics.accepted(request.thingName)
      : rotationTopics.rejected(request.thingName);
    await deps.publisher.publish(topic, answer);
    return answer;
  };
}
