/**
 * The device–user binding wire formats the simulators speak (seeds 001/003, protocols.md §2, the
 * binding contract of issue 11): pure functions, no I/O.
 *
 * Numbers from Alibaba's public Linkkit SDK (dev_bind: awss_report.c, awss_notify.c), which the
 * seeds' logs come from: a reported token is good for 45 s on the device (AWSS_TOKEN_TIMEOUT_MS;
 * `remainTime` in the LAN payloads is what is left of it, in ms), a report without a reply is
 * sent again after 30 s (MATCH_MONITOR_TIMEOUT_MS; the seeds: "2 tries"), device.info.notify is
 * sent 30 times (AWSS_NOTIFY_CNT_MAX) with the pause growing by 100 ms per send (0, 100, 200 ...
 * ms: 43.5 s in all, inside the token's 45 s) to UDP port 5683.
 */
import { randomBytes } from "node:crypto";

export const TOKEN_LIFETIME_MS = 45_000;
export const REPLY_TIMEOUT_MS = 30_000;
export const REPORT_TRIES = 2;
export const NOTIFY_COUNT = 30;
export const NOTIFY_STEP_MS = 100;
/** The Alibaba AWSS multicast group and the CoAP port the phones and devices listen on. */
export const AWSS_MULTICAST_GROUP = "224.0.1.187";
export const AWSS_COAP_PORT = 5683;
export const NOTIFY_PATH = "/sys/device/info/notify";
export const INFO_GET_PATH = "/sys/device/info/get";

/** 16 random bytes as 32 uppercase hex characters. */
export function newBindingToken(random: (size: number) => Buffer = randomBytes): string {
  return random(16).toString("hex").toUpperCase();
}

export function isBindingToken(value: string): boolean {
  return /^[0-9A-F]{32}$/.test(value);
}

/** `4786…EE4F`: enough to tell tokens apart in a log, not enough to use one. */
export function maskToken(token: string): string {
  return `${token.slice(0, 4)}…${token.slice(-4)}`;
}

/** Where a device publishes and subscribes for binding: Alibaba topics, or its thing's topic space. */
export type BindingIdentity =
  | { kind: "aliyun"; productKey: string; deviceName: string }
  | { kind: "thing"; productKey: string; thingName: string };

export type BindingTopics = { match: string; matchReply: string; reset: string; resetReply: string };

export function bindingTopics(identity: BindingIdentity): BindingTopics {
  const base =
    identity.kind === "aliyun"
      ? `/sys/${identity.productKey}/${identity.deviceName}/thing`
      : `things/${identity.thingName}/sys/thing`;
  return {
    match: `${base}/awss/enrollee/match`,
    matchReply: `${base}/awss/enrollee/match_reply`,
    reset: `${base}/reset`,
    resetReply: `${base}/reset_reply`,
  };
}

/** The device name the cloud and the phone know the device by (a certificate device's thing name). */
export function deviceNameOf(identity: BindingIdentity): string {
  return identity.kind === "aliyun" ? identity.deviceName : identity.thingName;
}

/** `thing.awss.enrollee.match`, as the SDK's `report token:` line shows it. */
export function matchRequest(id: string, token: string): string {
  return JSON.stringify({
    id,
    version: "1.0",
    method: "thing.awss.enrollee.match",
    params: { token },
  });
}

export function resetRequest(id: string): string {
  return JSON.stringify({ id, version: "1.0", method: "thing.reset", params: {} });
}

/** A `match_reply` / `reset_reply`: `{id, code, data}` (+ message on refusal). */
export type CloudReply = { id: string; code: number; message?: string };

export function parseCloudReply(payload: string): CloudReply | undefined {
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null) return undefined;
  const { id, code, message } = body as Record<string, unknown>;
  if ((typeof id !== "string" && typeof id !== "number") || typeof code !== "number") return undefined;
  return { id: String(id), code, ...(typeof message === "string" ? { message } : {}) };
}

/** The device information a notify carries and a GET answers with (field order as in the seeds). */
export type DeviceInfo = {
  awssVer: Record<string, string>;
  productKey: string;
  deviceName: string;
  mac: string;
  ip: string;
  cipherType: number;
  token: string;
  remainTime: number;
  type: number;
};

export const AWSS_VERSIONS = { smartconfig: "2.0", zconfig: "2.0", router: "2.0", ap: "2.0", softap: "2.0" };

export function deviceInfo(input: {
  productKey: string;
  deviceName: string;
  mac: string;
  ip: string;
  token: string;
  remainTimeMs: number;
}): DeviceInfo {
  return {
    awssVer: { ...AWSS_VERSIONS },
    productKey: input.productKey,
    deviceName: input.deviceName,
    mac: input.mac,
    ip: input.ip,
    cipherType: 4,
    token: input.token,
    remainTime: Math.max(0, Math.floor(input.remainTimeMs)),
    type: 0,
  };
}

/** `device.info.notify` (CoAP POST to /sys/device/info/notify). */
export function notifyPayload(id: number, info: DeviceInfo): string {
  return JSON.stringify({ id: String(id), version: "1.0", method: "device.info.notify", params: info });
}

/** The answer to GET /sys/device/info/get: the request's id (123 when it had none), code 200, the info. */
export function infoReply(id: string | number, info: DeviceInfo): string {
  return JSON.stringify({ id, code: 200, data: info });
}

/** A phone's answer to a notify (stops the device's notifying, as the SDK's awss_notify_response does). */
export function notifyAck(id: string): string {
  return JSON.stringify({ id, code: 200, data: {} });
}

/** The id a phone's request carried in its JSON payload, if any. */
export function requestId(payload: Buffer | string): string | number | undefined {
  const text = payload.toString();
  if (text.trim() === "") return undefined;
  try {
    const id = (JSON.parse(text) as { id?: unknown }).id;
    return typeof id === "string" || typeof id === "number" ? id : undefined;
  } catch {
    return undefined;
  }
}

/** What a phone learns from a notify or a GET answer; undefined when it is not one. */
export type DiscoveredDevice = {
  productKey: string;
  deviceName: string;
  token: string;
  remainTime: number;
  ip: string;
  mac: string;
};

export function parseDeviceInfo(value: unknown): DiscoveredDevice | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (
    typeof v.productKey !== "string" ||
    typeof v.deviceName !== "string" ||
    typeof v.token !== "string" ||
    !isBindingToken(v.token)
  ) {
    return undefined;
  }
  return {
    productKey: v.productKey,
    deviceName: v.deviceName,
    token: v.token,
    remainTime: typeof v.remainTime === "number" ? v.remainTime : 0,
    ip: typeof v.ip === "string" ? v.ip : "",
    mac: typeof v.mac === "string" ? v.mac : "",
  };
}

/** A notify's params or a GET answer's data, with the message id (for the phone's ack). */
export function parseLanMessage(payload: string): { id?: string; device: DiscoveredDevice } | undefined {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(payload) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null) return undefined;
  const inner =
    body.method === "device.info.notify" ? body.params : body.code === 200 ? body.data : undefined;
  const device = parseDeviceInfo(inner);
  if (!device) return undefined;
  const id = typeof body.id === "string" || typeof body.id === "number" ? String(body.id) : undefined;
  return { ...(id !== undefined ? { id } : {}), device };
}

/** The pause before notify number `index` (0-based): 0, 100, 200 ... ms, times `stepMs / 100`. */
export function notifyDelayMs(index: number, stepMs = NOTIFY_STEP_MS): number {
  return index * stepMs;
}

/** "host:port" → {host, port}; throws a message naming `flag`. */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const at = value.lastIndexOf(":");
  const host = at > 0 ? value.slice(0, at) : "";
  const port = Number(value.slice(at + 1));
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${flag} must be host:port (e.g. 127.0.0.1:5683), got "${value}"`);
  }
  return { host, port };
}
