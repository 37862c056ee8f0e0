import * as z from "zod/mini";
import type { BindingDeps } from "#core/binding/bind-device.ts";
import { bindingTokenSchema, type DeviceRef, TooManyTokenReportsError } from "#core/binding/model.ts";
import type { BindingPublisher } from "#core/binding/ports.ts";
import { reportToken, resetDevice } from "#core/binding/report-token.ts";
import { DomainError } from "#core/errors.ts";
import { METRIC, type Metrics, noMetrics, timed } from "#core/metrics.ts";

/** What the binding rules deliver: the device's JSON plus `topic() AS topic`. */
const eventSchema = z.object({
  topic: z.string().check(z.maxLength(256)),
  id: z.optional(z.union([z.string().check(z.maxLength(64)), z.number()])),
  method: z.optional(z.string()),
  params: z.optional(z.record(z.string(), z.unknown())),
});

const matchParamsSchema = z.object({ token: bindingTokenSchema });

type Kind = "match" | "reset";
/** Where a message came from: the device as the topic names it, and where to answer. */
type Source =
  | { form: "sys"; productKey: string; deviceName: string; kind: Kind; replyTopic: string }
  | { form: "things"; thingName: string; kind: Kind; replyTopic: string };

const SUFFIX = { match: "thing/awss/enrollee/match", reset: "thing/reset" } as const;
const METHOD = { match: "thing.awss.enrollee.match", reset: "thing.reset" } as const;
const SYS_TOPIC =
  /^\/sys\/([A-Za-z0-9_-]{3,64})\/([A-Za-z0-9:_-]{1,128})\/(thing\/awss\/enrollee\/match|thing\/reset)$/;
const THINGS_TOPIC = /^things\/([A-Za-z0-9:_-]{1,128})\/sys\/(thing\/awss\/enrollee\/match|thing\/reset)$/;

/** Reads the topic: secret-born devices' `/sys/{pk}/{dn}/...`, certificate devices' `things/{thing}/sys/...`. */
export function parseBindingTopic(topic: string): Source | undefined {
  const kindOf = (suffix: string): Kind => (suffix === SUFFIX.match ? "match" : "reset");
  const sys = SYS_TOPIC.exec(topic);
  if (sys)
    return {
      form: "sys",
      productKey: sys[1]!,
      deviceName: sys[2]!,
      kind: kindOf(sys[3]!),
      replyTopic: `${topic}_reply`,
    };
  const things = THINGS_TOPIC.exec(topic);
  if (things)
    return { form: "things", thingName: things[1]!, kind: kindOf(things[2]!), replyTopic: `${topic}_reply` };
  return undefined;
}

export type BindingReportDeps = BindingDeps & { publisher: BindingPublisher; metrics?: Metrics };
export type BindingReply = { id: string; code: number; data?: Record<string, never>; message?: string };

/**
 * The binding-report Lambda, target of templates/rules/binding-*.json: a device's token report
 * (`thing.awss.enrollee.match`) or reset (`thing.reset`). Checks the device exists in the registry
 * and belongs to the product the topic names (certificate devices: the registry gives the
 * product), calls the use case and answers on the topic's `_reply`: code 200, 400 (malformed),
 * 403 (device unknown or not allowed, token refused), 429 (the device's token reports are over its
 * window's limit: not stored; the message says when to retry). A transient failure throws: no answer, the
 * rule's retry (and the device's own retry after 30 s) runs it again. Never logs the token.
 */
export function makeBindingReportHandler(deps: BindingReportDeps) {
  const metrics = deps.metrics ?? noMetrics;
  return (event: unknown): Promise<BindingReply | undefined> =>
    timed(metrics, async () => {
      const { reply, kind } = await handle(deps, event);
      metrics.count(METRIC.bindingReports, { kind, outcome: reply ? String(reply.code) : "UNANSWERED" });
      return reply;
    });
}

async function handle(
  deps: BindingReportDeps,
  event: unknown,
): Promise<{ reply?: BindingReply; kind: string }> {
  const parsed = eventSchema.safeParse(event);
  const source = parsed.success ? parseBindingTopic(parsed.data.topic) : undefined;
  if (!parsed.success || !source) {
    deps.logger.warn("binding: message on an unexpected topic or not a JSON object; ignored");
    return { kind: "unknown" };
  }
  const message = parsed.data;
  const id = message.id === undefined ? "0" : String(message.id);
  const answer = async (code: number, text?: string): Promise<BindingReply> => {
    const reply: BindingReply = text === undefined ? { id, code, data: {} } : { id, code, message: text };
    await deps.publisher.publish(source.replyTopic, reply);
    return reply;
  };
  const device = await deviceOf(deps, source);
  const where =
    source.form === "sys"
      ? { productKey: source.productKey, deviceName: source.deviceName }
      : { thingName: source.thingName };
  if (!device) {
    deps.logger.warn("binding: device unknown or not allowed", { ...where, kind: source.kind });
    return { reply: await answer(403, "device not allowed"), kind: source.kind };
  }
  if (message.method !== undefined && message.method !== METHOD[source.kind]) {
    return { reply: await answer(400, `method must be ${METHOD[source.kind]}`), kind: source.kind };
  }
  try {
    if (source.kind === "reset") {
      await resetDevice(deps, device);
      return { reply: await answer(200), kind: source.kind };
    }
    const params = matchParamsSchema.safeParse(message.params ?? {});
    if (!params.success) {
      deps.logger.warn("binding: malformed token report", { ...device });
      return {
        reply: await answer(400, "params.token must be 32 uppercase hexadecimal characters"),
        kind: source.kind,
      };
    }
    await reportToken(deps, { device, token: params.data.token });
    return { reply: await answer(200), kind: source.kind };
  } catch (error) {
    if (error instanceof TooManyTokenReportsError) {
      return { reply: await answer(429, error.message), kind: source.kind };
    }
    if (error instanceof DomainError && error.kind !== "unavailable" && error.kind !== "throttled") {
      return { reply: await answer(error.kind === "invalid" ? 400 : 403, error.message), kind: source.kind };
    }
    throw error;
  }
}

/** The device the topic names, if it exists, belongs to that product and is not disabled or revoked. */
async function deviceOf(deps: BindingReportDeps, source: Source): Promise<DeviceRef | undefined> {
  const serial = source.form === "sys" ? source.deviceName : source.thingName;
  const record = await deps.registry.getDevice(serial);
  if (!record || record.status === "disabled" || record.status === "revoked") return undefined;
  if (source.form === "sys" && record.productKey !== source.productKey) return undefined;
  return { productKey: record.productKey, deviceName: serial };
}
