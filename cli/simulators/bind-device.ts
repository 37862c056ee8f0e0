/**
 * The device side of binding (seeds 001/003), as Alibaba's Linkkit SDK does it, over a connected
 * MQTT client and a CoAP server on the LAN (npm `coap`):
 *
 * - report a token on `.../thing/awss/enrollee/match` (a fresh random one, or the phone's);
 *   no `match_reply` within the reply timeout → send it again; `tries` sends in all;
 * - once the cloud answered 200: `device.info.notify` `notifyCount` times (pause growing by
 *   `notifyStepMs` per send) to the AWSS multicast group and any unicast `notifyTo`, while the
 *   token is unexpired; a phone's `{"code":200}` answer stops it (and the token is renewed);
 * - GET `/sys/device/info/get` or `/sys/{pk}/{dn}/device/info/get`: answered only with a token the
 *   cloud acknowledged and that has not expired; then a fresh token is made and reported.
 *   Without one the request gets no answer and a fresh token is reported (the phone asks again);
 * - `reset()`: `thing.reset` on `.../thing/reset`, retried like a report until `reset_reply`.
 *
 * Every step is one event with the SDK's key log words (the seeds' troubleshooting keys), e.g.
 * `report token:{...}`, `awss_report_token_reply`, `topic:/sys/device/info/notify`,
 * `Request path is /sys/device/info/get`, `sending message to app: {...}`. Tokens are shown
 * masked unless `showTokens`.
 */
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { networkInterfaces } from "node:os";
import { Agent, createServer, type IncomingMessage, type OutgoingMessage, type Server } from "coap";
import type { MqttClient } from "mqtt";
import {
  AWSS_COAP_PORT,
  AWSS_MULTICAST_GROUP,
  type BindingIdentity,
  bindingTopics,
  deviceInfo,
  deviceNameOf,
  INFO_GET_PATH,
  infoReply,
  maskToken,
  matchRequest,
  NOTIFY_COUNT,
  NOTIFY_PATH,
  NOTIFY_STEP_MS,
  newBindingToken,
  notifyDelayMs,
  notifyPayload,
  parseCloudReply,
  REPLY_TIMEOUT_MS,
  REPORT_TRIES,
  requestId,
  resetRequest,
  TOKEN_LIFETIME_MS,
} from "./bind-protocol.ts";
import { closeAgent } from "./phone-lan.ts";

/** One printed step: a name, the text line, and details for --json. */
export type DeviceEvent = { event: string; text: string; details?: Record<string, unknown> };

export type BindDeviceOptions = {
  client: MqttClient;
  identity: BindingIdentity;
  lan: {
    /** UDP port of the CoAP server (0: any free one). */
    port: number;
    host?: string;
    /** Join the AWSS group and send notifies to it. */
    multicast: boolean;
    notifyTo: { host: string; port: number }[];
    /** What the payloads say (default: this host's first non-internal IPv4 address and its MAC). */
    ip?: string;
    mac?: string;
  };
  /** Serve CoAP and notify on the LAN (default true; a device that only resets does not). */
  serveLan?: boolean;
  /** Path 3: report this phone-made token first (no notify for it: the phone has it). */
  phoneToken?: string;
  replyTimeoutMs?: number;
  tries?: number;
  notifyCount?: number;
  notifyStepMs?: number;
  tokenLifetimeMs?: number;
  showTokens?: boolean;
  now?: () => number;
  random?: (size: number) => Buffer;
  log: (event: DeviceEvent) => void;
};

type Report = {
  token: string;
  /** The ids of this token's sends (a reply to any of them counts). */
  ids: Set<string>;
  tries: number;
  reportedAt: number;
  acknowledged: boolean;
  refused: boolean;
  gaveUp: boolean;
  fromPhone: boolean;
  timer?: NodeJS.Timeout;
};

type ResetWait = { ids: Set<string>; tries: number; timer?: NodeJS.Timeout; done: (ok: boolean) => void };

export class BindDevice {
  private readonly o: Required<
    Pick<
      BindDeviceOptions,
      "replyTimeoutMs" | "tries" | "notifyCount" | "notifyStepMs" | "tokenLifetimeMs" | "showTokens"
    >
  > &
    BindDeviceOptions;
  private readonly topics;
  private readonly deviceName: string;
  private readonly now: () => number;
  private readonly random: (size: number) => Buffer;
  private nextId = 0;
  private notifyId = 0;
  private report: Report | undefined;
  private resetWait: ResetWait | undefined;
  private notifyTimer: NodeJS.Timeout | undefined;
  private notifying = false;
  private notifiedOnce = false;
  private socket: Socket | undefined;
  private server: Server | undefined;
  private agent: Agent | undefined;
  private agentSocket: Socket | undefined;
  private readonly sendErrors = new Set<string>();
  private stopped = false;
  private readonly onMessage = (topic: string, payload: Buffer) => this.handleMessage(topic, payload);

  constructor(options: BindDeviceOptions) {
    this.o = {
      replyTimeoutMs: REPLY_TIMEOUT_MS,
      tries: REPORT_TRIES,
      notifyCount: NOTIFY_COUNT,
      notifyStepMs: NOTIFY_STEP_MS,
      tokenLifetimeMs: TOKEN_LIFETIME_MS,
      showTokens: false,
      ...options,
    };
    this.topics = bindingTopics(options.identity);
    this.deviceName = deviceNameOf(options.identity);
    this.now = options.now ?? Date.now;
    this.random = options.random ?? randomBytes;
  }

  /** The CoAP server's UDP port (after start). */
  get lanPort(): number {
    return this.socket ? this.socket.address().port : 0;
  }

  /** Subscribes to the replies and serves CoAP on the LAN (then `beginBinding` or `reset`). */
  async start(): Promise<void> {
    this.o.client.on("message", this.onMessage);
    for (const topic of [this.topics.matchReply, this.topics.resetReply]) {
      this.emit("subscribe", `mqtt subscribe packet sent, topic = ${topic}!`, { topic });
      const granted = await new Promise<number | undefined>((resolve, reject) =>
        this.o.client.subscribe(topic, { qos: 1 }, (error, result) => {
          const suback = (error as (Error & { packet?: { granted?: unknown[] } }) | null)?.packet;
          if (error && !Array.isArray(suback?.granted)) return reject(error);
          const qos = result?.[0]?.qos;
          resolve(error || qos === undefined || qos === 128 ? undefined : qos);
        }),
      );
      if (granted === undefined) {
        // The seeds' symptom for this: replies arrive but "NO matching any topic".
        throw new SubscribeRefusedError(topic);
      }
      this.emit("subscribed", `sub ${topic} success`, { topic, grantedQos: granted });
    }
    if (this.o.serveLan !== false) await this.startLan();
  }

  /** Reports the first token (the phone's with `phoneToken`, else a fresh one): binding starts. */
  beginBinding(): void {
    this.startReport(this.o.phoneToken ?? newBindingToken(this.random), this.o.phoneToken !== undefined);
  }

  /** `thing.reset`: resolves true on reset_reply 200, false when no reply came after `tries` sends. */
  reset(): Promise<boolean> {
    return new Promise((resolve) => {
      const wait: ResetWait = {
        ids: new Set(),
        tries: 0,
        done: (ok) => {
          clearTimeout(wait.timer);
          this.resetWait = undefined;
          resolve(ok);
        },
      };
      this.resetWait = wait;
      const send = () => {
        if (this.stopped) return wait.done(false);
        if (wait.tries >= this.o.tries) {
          this.emit("reset-timeout", `no reset_reply after ${wait.tries} tries: the cloud did not answer`, {
            tries: wait.tries,
          });
          return wait.done(false);
        }
        wait.tries += 1;
        const id = String(this.nextId++);
        wait.ids.add(id);
        const body = resetRequest(id);
        this.emit("report-reset", `report reset:${body}`, { topic: this.topics.reset, id, try: wait.tries });
        this.o.client.publish(this.topics.reset, body, { qos: 1 }, (error) => {
          this.emit("report-reset-result", `report reset result:${error ? -1 : 0}`, {
            ok: !error,
            ...(error ? { error: error.message } : {}),
          });
        });
        wait.timer = setTimeout(send, this.o.replyTimeoutMs);
      };
      send();
    });
  }

  /** Stops timers, the CoAP server and the notify sender; leaves the MQTT client to its owner. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.o.client.off("message", this.onMessage);
    clearTimeout(this.report?.timer);
    clearTimeout(this.notifyTimer);
    this.resetWait?.done(false);
    if (this.agent && this.agentSocket) closeAgent(this.agent, this.agentSocket);
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    // The server does not close a socket it was given.
    this.socket?.close();
  }

  private show(token: string): string {
    return this.o.showTokens ? token : maskToken(token);
  }

  private shown(text: string, token: string): string {
    return this.o.showTokens ? text : text.replaceAll(token, maskToken(token));
  }

  private emit(event: string, text: string, details?: Record<string, unknown>): void {
    this.o.log({ event, text, ...(details ? { details } : {}) });
  }

  private startReport(token: string, fromPhone: boolean): void {
    if (this.stopped) return;
    clearTimeout(this.report?.timer);
    this.report = {
      token,
      ids: new Set(),
      tries: 0,
      reportedAt: this.now(),
      acknowledged: false,
      refused: false,
      gaveUp: false,
      fromPhone,
    };
    this.sendReport(this.report);
  }

  private sendReport(report: Report): void {
    if (this.stopped || report !== this.report || report.acknowledged || report.refused) return;
    if (report.tries >= this.o.tries) {
      report.gaveUp = true;
      this.emit(
        "report-timeout",
        `no match_reply after ${report.tries} tries: the cloud did not answer the token report (binding rule, binding-report function, or the device's policy)`,
        { tries: report.tries },
      );
      return;
    }
    report.tries += 1;
    const id = String(this.nextId++);
    report.ids.add(id);
    // The SDK restarts the token's clock at every send (awss_report_token_time).
    report.reportedAt = this.now();
    const body = matchRequest(id, report.token);
    this.emit("report-token", `report token:${this.shown(body, report.token)}`, {
      topic: this.topics.match,
      id,
      try: report.tries,
      token: this.show(report.token),
      ...(report.fromPhone ? { phoneToken: true } : {}),
    });
    this.o.client.publish(this.topics.match, body, { qos: 1 }, (error) => {
      this.emit("report-token-result", `report token res:${error ? -1 : 0}`, {
        ok: !error,
        ...(error ? { error: error.message } : {}),
      });
    });
    report.timer = setTimeout(() => this.sendReport(report), this.o.replyTimeoutMs);
  }

  private handleMessage(topic: string, payload: Buffer): void {
    if (topic !== this.topics.matchReply && topic !== this.topics.resetReply) return;
    this.emit("reply", `Topic Name : ${topic}`, { topic });
    const reply = parseCloudReply(payload.toString("utf8"));
    if (!reply) {
      this.emit(
        "reply-unreadable",
        `${topic}: not a {id, code} reply: ${payload.toString("utf8").slice(0, 200)}`,
      );
      return;
    }
    this.emit("topic-matched", "topic be matched", { id: reply.id, code: reply.code });
    if (topic === this.topics.resetReply) {
      const wait = this.resetWait;
      if (!wait?.ids.has(reply.id)) return;
      if (reply.code === 200) {
        this.emit("reset-reply", "awss_report_reset_reply", { id: reply.id });
        wait.done(true);
      } else {
        this.emit("reset-refused", `reset_reply code ${reply.code}: ${reply.message ?? ""}`, { ...reply });
        wait.done(false);
      }
      return;
    }
    const report = this.report;
    if (!report?.ids.has(reply.id)) {
      this.emit("reply-stale", `match_reply ${reply.id} answers an earlier token: ignored`, { id: reply.id });
      return;
    }
    clearTimeout(report.timer);
    if (reply.code !== 200) {
      report.refused = true;
      this.emit(
        "report-refused",
        `match_reply code ${reply.code}: ${reply.message ?? ""} (token not stored)`,
        {
          ...reply,
        },
      );
      return;
    }
    if (report.acknowledged) return;
    report.acknowledged = true;
    this.emit("report-token-reply", "awss_report_token_reply", {
      id: reply.id,
      token: this.show(report.token),
      remainTime: this.remainTime(report),
    });
    if (!this.notifiedOnce && !report.fromPhone) {
      this.notifiedOnce = true;
      this.startNotify();
    }
  }

  private remainTime(report: Report): number {
    return Math.max(0, this.o.tokenLifetimeMs - (this.now() - report.reportedAt));
  }

  /** A token the cloud acknowledged and that has not expired. */
  private validReport(): Report | undefined {
    const report = this.report;
    if (!report?.acknowledged) return undefined;
    return this.remainTime(report) > 0 ? report : undefined;
  }

  private info(report: Report) {
    const { ip, mac } = lanAddress(this.o.lan.ip, this.o.lan.mac);
    return deviceInfo({
      productKey: this.o.identity.productKey,
      deviceName: this.deviceName,
      mac,
      ip,
      token: report.token,
      remainTimeMs: this.remainTime(report),
    });
  }

  // ---- LAN ----

  private async startLan(): Promise<void> {
    const socket = createSocket({ type: "udp4", reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(this.o.lan.port, this.o.lan.host ?? "0.0.0.0", () => {
        socket.off("error", reject);
        resolve();
      });
    }).catch((error: Error) => {
      socket.close();
      throw new LanPortError(this.o.lan.port, error.message);
    });
    if (this.o.lan.multicast) {
      try {
        socket.setMulticastLoopback(true);
        socket.addMembership(AWSS_MULTICAST_GROUP);
      } catch (error) {
        this.emit(
          "multicast-unavailable",
          `cannot join ${AWSS_MULTICAST_GROUP} (${(error as Error).message}): multicast GETs will not arrive; unicast still works`,
        );
      }
    }
    this.socket = socket;
    const server = createServer({ type: "udp4" }, (req, res) => this.handleRequest(req, res));
    server.on("error", (error: Error) => this.emit("lan-error", `CoAP server: ${error.message}`));
    server.listen(socket);
    this.server = server;
    const paths = [INFO_GET_PATH, `/sys/${this.o.identity.productKey}/${this.deviceName}/device/info/get`];
    for (const [i, path] of paths.entries()) {
      this.emit("register-resource", `Register new resource ${path} success, count: ${9 - i}`, { path });
    }
    this.emit("lan-listening", `CoAP server on udp ${this.o.lan.host ?? "0.0.0.0"}:${this.lanPort}`, {
      port: this.lanPort,
    });
    this.agentSocket = createSocket("udp4");
    const agent = new Agent({ type: "udp4", socket: this.agentSocket });
    agent.on("error", (error: Error) => this.sendFailed("agent", error));
    this.agent = agent;
  }

  private handleRequest(req: IncomingMessage, res: OutgoingMessage): void {
    const path = (req.url.split("?")[0] ?? "").replace(/\/+$/, "");
    if (path === NOTIFY_PATH) {
      // A notify in the group (another device's, or ours looped back): not for a device.
      res.code = "4.04";
      res.end();
      return;
    }
    this.emit("request", `Request path is ${path}`, {
      path,
      method: req.method,
      from: `${req.rsinfo.address}:${req.rsinfo.port}`,
    });
    const own = `/sys/${this.o.identity.productKey}/${this.deviceName}/device/info/get`;
    if ((path !== INFO_GET_PATH && path !== own) || (req.method !== "GET" && req.method !== "POST")) {
      res.code = "4.04";
      res.end();
      return;
    }
    this.emit("resource-found", `Found the resource: ${path}`, { path });
    const report = this.validReport();
    if (!report) {
      const current = this.report;
      const inFlight =
        current !== undefined &&
        !current.acknowledged &&
        !current.gaveUp &&
        !current.refused &&
        this.remainTime(current) > 0;
      this.emit(
        "no-token",
        `no token the cloud acknowledged that is still valid: not answering${inFlight ? " (a report is waiting for match_reply)" : "; update token"}`,
        { path, reportPending: inFlight },
      );
      if (!inFlight) this.startReport(newBindingToken(this.random), false);
      return;
    }
    const id = requestId(req.payload) ?? 123;
    const body = infoReply(id, this.info(report));
    this.emit("sending", `sending message to app: ${this.shown(body, report.token)}`, {
      to: `${req.rsinfo.address}:${req.rsinfo.port}`,
      token: this.show(report.token),
    });
    res.setOption("Content-Format", "application/json");
    res.end(body);
    // The answered token stays in the cloud until used or expired; the device moves on to a new one.
    this.emit("update-token", "update token");
    this.startReport(newBindingToken(this.random), false);
  }

  private startNotify(): void {
    const targets = [
      ...(this.o.lan.multicast
        ? [{ host: AWSS_MULTICAST_GROUP, port: AWSS_COAP_PORT, multicast: true }]
        : []),
      ...this.o.lan.notifyTo.map((t) => ({ ...t, multicast: false })),
    ];
    if (targets.length === 0) {
      this.emit("notify-none", "no notify target (--no-multicast and no --notify-to): not notifying");
      return;
    }
    this.notifyId += 1;
    const id = this.notifyId;
    this.notifying = true;
    let sent = 0;
    const step = () => {
      if (this.stopped || !this.notifying) return;
      const report = this.validReport();
      if (!report) {
        this.notifying = false;
        this.emit("notify-stopped", `notify stopped after ${sent}: the token expired`, { sent });
        return;
      }
      const body = notifyPayload(id, this.info(report));
      if (sent === 0) {
        this.emit("notify-topic", `topic:${NOTIFY_PATH}`, {
          targets: targets.map((t) => `${t.host}:${t.port}`),
        });
        this.emit("notify-payload", `payload:${this.shown(body, report.token)}`, {
          id: String(id),
          token: this.show(report.token),
        });
      }
      for (const target of targets) this.sendNotify(target, body, String(id), report);
      sent += 1;
      this.emit("notify-sent", `send notify ${sent}/${this.o.notifyCount} success`, { sent });
      if (sent >= this.o.notifyCount) {
        this.notifying = false;
        this.emit("notify-done", `device.info.notify sent ${sent} times`, { sent });
        return;
      }
      this.notifyTimer = setTimeout(step, notifyDelayMs(sent, this.o.notifyStepMs));
    };
    step();
  }

  private sendNotify(
    target: { host: string; port: number; multicast: boolean },
    body: string,
    id: string,
    report: Report,
  ): void {
    const agent = this.agent;
    if (!agent) return;
    const req = agent.request({
      host: target.host,
      port: target.port,
      method: "POST",
      pathname: NOTIFY_PATH,
      confirmable: false,
      ...(target.multicast ? { multicast: true, multicastTimeout: 2000 } : {}),
    });
    req.setOption("Content-Format", "application/json");
    req.on("response", (res: IncomingMessage) => {
      const ack = parseCloudReply(res.payload.toString("utf8"));
      if (!this.notifying || !ack || ack.id !== id || ack.code !== 200 || report !== this.report) return;
      this.notifying = false;
      clearTimeout(this.notifyTimer);
      this.emit(
        "notify-answered",
        `notify answered by ${res.rsinfo.address}:${res.rsinfo.port}: stop notifying; update token`,
        {
          from: `${res.rsinfo.address}:${res.rsinfo.port}`,
        },
      );
      this.startReport(newBindingToken(this.random), false);
    });
    req.on("error", (error: Error) => this.sendFailed(`${target.host}:${target.port}`, error));
    req.on("timeout", () => undefined);
    req.end(body);
  }

  /** A send error is said once per target (e.g. no multicast route on this host). */
  private sendFailed(target: string, error: Error): void {
    if (this.sendErrors.has(target)) return;
    this.sendErrors.add(target);
    this.emit("notify-error", `send notify to ${target} failed: ${error.message}`, { target });
  }
}

export class SubscribeRefusedError extends Error {
  constructor(readonly topic: string) {
    super(
      `subscribing to ${topic} was refused: the device's policy does not allow its binding topics (match_reply would then reach no handler: "NO matching any topic")`,
    );
    this.name = "SubscribeRefusedError";
  }
}

export class LanPortError extends Error {
  constructor(
    readonly port: number,
    reason: string,
  ) {
    super(`cannot listen on UDP port ${port} for CoAP (${reason}): choose another --lan-port`);
    this.name = "LanPortError";
  }
}

/** The IPv4 address and MAC the LAN payloads carry: given ones, or this host's first non-internal interface. */
export function lanAddress(ip?: string, mac?: string): { ip: string; mac: string } {
  if (ip && mac) return { ip, mac };
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.family === "IPv4" && !a.internal) {
        return { ip: ip ?? a.address, mac: mac ?? a.mac.toUpperCase() };
      }
    }
  }
  return { ip: ip ?? "127.0.0.1", mac: mac ?? "00:00:00:00:00:00" };
}
