/**
 * The EnOS CoAP gateway (seed 000): NB-IoT devices speak CoAP over DTLS 1.2 with a PSK derived
 * from their secret. SecureMode 3 sessions (product secret) may only ask for their device secret
 * (`GET /topic/ext/session/{pk}/{dk}/thing/activate/info` → 2.05 `thing.activate.info`); SecureMode
 * 2 sessions (device secret) are the device online: POSTs to its `/topic/sys/{pk}/{dk}/...` are
 * published into AWS IoT Core as `/sys/{pk}/{dk}/...`, and its first successful login makes the
 * thing and commits the registry record (recordFirstLogin, as for MQTT logins). The identity's
 * Lifetime (30–86,400 s) is the session's idle timeout. Core use cases through ports only.
 */
import type { AddressInfo } from "node:net";
import { recordFirstLogin } from "#core/authorizer/record-first-login.ts";
import { describeError } from "#core/describe-error.ts";
import { ConflictError, DeviceNotAllowedError } from "#core/errors.ts";
import { activateDevice } from "#core/registration/activate-device.ts";
import {
  type CoapRequest,
  type CoapResponse,
  type CoapServerEndpoint,
  jsonResponse,
  ResponseCode,
  serveCoapOnSession,
  textResponse,
} from "#gateway/coap/index.ts";
import {
  DtlsServer,
  type DtlsServerOptions,
  type DtlsSession,
  type RemoteAddress,
} from "#gateway/dtls/index.ts";
import type { EnosGatewayDeps } from "./ports.ts";
import { type EnosPskLogin, resolveEnosPsk } from "./psk-login.ts";
import { activationPath, routeUplink } from "./topics.ts";

export type EnosCoapGatewayOptions = {
  /** DTLS server settings (limits, timing, suites); the PSK lookup is the gateway's. */
  dtls?: Omit<DtlsServerOptions, "psk">;
};

export type EnosGatewayStats = {
  sessions: number;
  activations: number;
  published: number;
  refusedIdentities: number;
};

/** A login found by the PSK lookup, waiting for its handshake to finish. */
type PendingLogin = { identity: Buffer; login: EnosPskLogin; at: number };
const PENDING_LOGIN_TTL_MS = 60_000;

export class EnosCoapGateway {
  readonly dtls: DtlsServer;
  private readonly pending = new Map<string, PendingLogin>();
  private readonly endpoints = new Set<CoapServerEndpoint>();
  private readonly counters: EnosGatewayStats = {
    sessions: 0,
    activations: 0,
    published: 0,
    refusedIdentities: 0,
  };

  constructor(
    private readonly deps: EnosGatewayDeps,
    options: EnosCoapGatewayOptions = {},
  ) {
    this.dtls = new DtlsServer({ ...options.dtls, psk: (identity, remote) => this.lookup(identity, remote) });
    this.dtls.on("session", (session) => this.onSession(session));
    this.dtls.on("handshakeFailed", (remote, reason) => {
      this.pending.delete(keyOf(remote));
      deps.logger.info("coap: handshake failed", { remote: `${remote.address}:${remote.port}`, reason });
    });
    this.dtls.on("error", (error) =>
      deps.logger.error("coap: DTLS server error", { error: describeError(error) }),
    );
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return this.dtls.listen(port, host);
  }

  stats(): EnosGatewayStats & { dtls: ReturnType<DtlsServer["stats"]> } {
    return { ...this.counters, dtls: this.dtls.stats() };
  }

  async close(): Promise<void> {
    for (const endpoint of this.endpoints) endpoint.close();
    await this.dtls.close();
  }

  private async lookup(identity: Buffer, remote: RemoteAddress): Promise<Buffer | undefined> {
    const now = (this.deps.clock ?? Date.now)();
    for (const [key, entry] of this.pending)
      if (now - entry.at > PENDING_LOGIN_TTL_MS) this.pending.delete(key);
    try {
      const decision = await resolveEnosPsk(this.deps, identity);
      if ("refused" in decision) {
        this.counters.refusedIdentities++;
        this.deps.logger.info("coap: no key for this identity", {
          remote: `${remote.address}:${remote.port}`,
          reason: decision.refused,
        });
        return undefined;
      }
      this.pending.set(keyOf(remote), { identity: Buffer.from(identity), login: decision.login, at: now });
      return decision.login.key;
    } catch (error) {
      this.deps.logger.error("coap: PSK lookup failed", { error: describeError(error) });
      return undefined;
    }
  }

  private onSession(session: DtlsSession): void {
    const key = keyOf(session.remote);
    const pending = this.pending.get(key);
    this.pending.delete(key);
    if (!pending?.identity.equals(session.identity)) {
      session.close(); // cannot happen: the lookup just ran for this address and identity
      return;
    }
    const { login } = pending as PendingLogin;
    const { productKey, deviceKey, secureMode, lifetime } = login.identity;
    session.setIdleTimeout(lifetime * 1000);
    this.counters.sessions++;
    this.deps.logger.info("coap: device online", {
      productKey,
      deviceKey,
      secureMode,
      lifetime,
      remote: `${session.remote.address}:${session.remote.port}`,
    });
    session.on("close", (reason) => {
      this.deps.logger.info("coap: device offline", { productKey, deviceKey, reason });
    });
    if (secureMode === 2 && login.device.status === "registered") {
      const at = new Date((this.deps.clock ?? Date.now)()).toISOString();
      void recordFirstLogin(this.deps, login.product, login.device.serialNumber, at);
    }
    const endpoint = serveCoapOnSession(
      session,
      (request) => (secureMode === 3 ? this.activationOnly(login, request) : this.uplink(login, request)),
      {
        onHandlerError: (error) =>
          this.deps.logger.error("coap: request failed", {
            productKey,
            deviceKey,
            error: describeError(error),
          }),
      },
    );
    this.endpoints.add(endpoint);
    session.on("close", () => this.endpoints.delete(endpoint));
  }

  /** SecureMode 3: the activation request and nothing else. */
  private async activationOnly(login: EnosPskLogin, request: CoapRequest): Promise<CoapResponse> {
    const { productKey, deviceKey } = login.identity;
    if (`/${request.path.join("/")}` !== activationPath(productKey, deviceKey))
      return textResponse(
        ResponseCode.forbidden,
        "a SecureMode 3 session may only ask for its activation info",
      );
    if (request.method !== "GET") return { code: ResponseCode.methodNotAllowed };
    try {
      const info = await activateDevice(this.deps, { productKey, deviceKey, id: String(request.messageId) });
      this.counters.activations++;
      return jsonResponse(ResponseCode.content, info);
    } catch (error) {
      if (error instanceof DeviceNotAllowedError) return { code: ResponseCode.forbidden };
      if (error instanceof ConflictError) return { code: ResponseCode.serviceUnavailable, maxAge: 1 };
      throw error;
    }
  }

  /** SecureMode 2: the device's own `/topic/sys/...` POSTs go to AWS IoT Core. */
  private async uplink(login: EnosPskLogin, request: CoapRequest): Promise<CoapResponse> {
    const { productKey, deviceKey } = login.identity;
    const route = routeUplink(request.path, productKey, deviceKey);
    switch (route.kind) {
      case "not-found":
        return { code: ResponseCode.notFound };
      case "forbidden":
        return textResponse(ResponseCode.forbidden, route.why);
      case "bad-topic":
        return textResponse(ResponseCode.badRequest, route.why);
    }
    if (request.method !== "POST") return { code: ResponseCode.methodNotAllowed };
    let message: unknown;
    try {
      message = JSON.parse(request.payload.toString("utf8"));
    } catch {
      return textResponse(ResponseCode.badRequest, "the payload must be JSON");
    }
    try {
      await this.deps.publisher.publish(route.topic, message);
    } catch (error) {
      this.deps.logger.warn("coap: publish failed", { topic: route.topic, error: describeError(error) });
      return { code: ResponseCode.serviceUnavailable, maxAge: 2 };
    }
    this.counters.published++;
    return { code: ResponseCode.changed };
  }
}

const keyOf = (remote: RemoteAddress): string => `${remote.address}|${remote.port}`;
