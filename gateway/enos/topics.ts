/** EnOS CoAP resource paths and the AWS IoT topics they map to (seed 000). */

/** `/topic/ext/session/{pk}/{dk}/thing/activate/info`: SecureMode 3's only request (GET). */
export const activationPath = (productKey: string, deviceKey: string): string =>
  `/topic/ext/session/${productKey}/${deviceKey}/thing/activate/info`;

/** AWS IoT: at most 256 bytes of UTF-8 and 7 forward slashes in a topic name. */
const MAX_TOPIC_BYTES = 256;
const MAX_TOPIC_SLASHES = 7;

export type UplinkRoute =
  | { kind: "publish"; topic: string }
  | { kind: "forbidden"; why: string }
  | { kind: "bad-topic"; why: string }
  | { kind: "not-found" };

/**
 * Where a SecureMode 2 device's request path goes: its own `/topic/sys/{pk}/{dk}/...` is published
 * as `/sys/{pk}/{dk}/...` (the topics the device's MQTT policy grants); another device's topics,
 * or `/topic/ext/...`, are forbidden; anything else is not found.
 */
export function routeUplink(segments: string[], productKey: string, deviceKey: string): UplinkRoute {
  if (segments[0] !== "topic") return { kind: "not-found" };
  const [, space, pk, dk, ...rest] = segments;
  if (space !== "sys")
    return space === "ext" ? { kind: "forbidden", why: "not this session's topics" } : { kind: "not-found" };
  if (pk !== productKey || dk !== deviceKey) return { kind: "forbidden", why: "another device's topic" };
  if (rest.length === 0) return { kind: "not-found" };
  if (rest.some((s) => s.length === 0 || s.includes("+") || s.includes("#") || s.includes("/")))
    return { kind: "bad-topic", why: "empty topic levels and wildcards are not allowed" };
  const topic = `/sys/${productKey}/${deviceKey}/${rest.join("/")}`;
  if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES || topic.split("/").length - 1 > MAX_TOPIC_SLASHES)
    return { kind: "bad-topic", why: "AWS IoT topics have at most 7 slashes and 256 bytes" };
  return { kind: "publish", topic };
}
