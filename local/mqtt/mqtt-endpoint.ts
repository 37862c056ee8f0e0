import type { Socket } from "node:net";
import { createServer, type TLSSocket } from "node:tls";
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket } from "aedes";
import type { Logger } from "#core/logger.ts";
import type { IotEmulator } from "#local/iot/index.ts";
import type { ConnectRateLimiter } from "#local/iot/quotas.ts";
import { type ConnectDecision, decideConnect } from "./connect-decision.ts";
import { type ConnectionSession, DeviceAuthorizer, isAuthorizerSession } from "./device-authorizer.ts";
import { FleetProvisioningApi, type FleetProvisioningOptions } from "./fleet-provisioning.ts";
import { type IotAction, topicArn, topicFilterArn } from "./policy-engine.ts";
import type { RuleEngine } from "./rule-engine.ts";
import { decideSecretLogin, type SecretLoginOptions, type ServicePush } from "./secret-login.ts";
import { issueServerIdentity } from "./server-certificate.ts";
import { topicViolation } from "./topic-limits.ts";

/** Options of startMqttEndpoint. */
export type MqttEndpointOptions = {
  /** The registry that authenticates devices and the CA that signs the server certificate. */
  iot: IotEmulator;
  /** Every message published through the endpoint (and each JITR event) is offered to it. */
  rules: RuleEngine;
  /** Address to listen on, e.g. `127.0.0.1`. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  logger: Logger;
  /** Region and account of the resource ARNs policies are evaluated against. */
  region: string;
  accountId: string;
  /**
   * How long a connection may take to finish its TLS handshake (default 10 s), and then to send
   * CONNECT (default 30 s); past either it is closed. A socket that connects and sends nothing
   * never finishes its handshake, so it is closed by the first.
   */
  timeouts?: { handshakeMs?: number; connectMs?: number };
  /** Serve the fleet provisioning MQTT API (fleet-provisioning.ts) with these hook targets. */
  fleet?: FleetProvisioningOptions;
  /** Accept username/password logins (no client certificate) through the custom authorizer. */
  secretLogin?: SecretLoginOptions;
  /**
   * AWS IoT Core's 1 CONNECT per second per client id (`--aws-quotas default`): a faster CONNECT
   * is refused (closed without CONNACK). Not enforced when absent.
   */
  connectRate?: ConnectRateLimiter;
};

/** A running local MQTT endpoint. */
export type MqttEndpoint = {
  /** The port it listens on (the real one when 0 was asked). */
  port: number;
  /** `mqtts://localhost:{port}`. */
  url: string;
  /**
   * Publishes as the service (what the AWS IoT data plane's Publish does): delivered to
   * subscribers and rules, QoS 1 semantics for the caller (resolves once handed to the broker).
   */
  publish(topic: string, payload: unknown): Promise<void>;
  /** Closes every connection and stops listening. */
  close(): Promise<void>;
};

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

const REFUSAL_IS_EXPECTED = new Set([
  "jitr-registered",
  "jitp-provisioned",
  "certificate-pending-activation",
]);

/**
 * The local AWS IoT Core data endpoint: MQTT 3.1.1 over TLS (aedes) with X.509 client
 * certificates, JITR / JITP on first connection, and AWS IoT policies enforced on connect,
 * publish, subscribe and delivery. The server certificate (`localhost`, `127.0.0.1`) is issued at
 * start by the emulator's root CA and kept in memory.
 *
 * Refused connections are closed without CONNACK and an unauthorized publish disconnects the
 * client, as AWS IoT Core does with MQTT 3.1.1; a retained publish also needs
 * `iot:RetainPublish`; an unauthorized subscription gets SUBACK 0x80 and a message the client may
 * not receive is not delivered. A topic or topic filter beyond AWS IoT Core's limits (see
 * topic-limits.ts) disconnects the client. A second connection with the same client id takes
 * over from the first. Connections that do not finish their TLS handshake, or do not send
 * CONNECT, in time are closed.
 */
export async function startMqttEndpoint(options: MqttEndpointOptions): Promise<MqttEndpoint> {
  const { iot, rules, logger } = options;
  const authorizer = new DeviceAuthorizer(iot.state, {
    region: options.region,
    accountId: options.accountId,
  });
  const sessions = new WeakMap<Client, ConnectionSession>();
  const fleet = options.fleet ? new FleetProvisioningApi(iot, logger, options.fleet) : undefined;
  const identity = await issueServerIdentity(iot.context.issuer, options.host);
  const handshakeTimeout = options.timeouts?.handshakeMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;

  const broker = await Aedes.createBroker({
    connectTimeout: options.timeouts?.connectMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    authenticate(client, username, password, done) {
      if (options.connectRate && !options.connectRate.tryConnect(client.id)) {
        logger.warn("mqtt: connect refused: over 1 CONNECT/s for this client id", {
          clientId: logged(client.id),
        });
        client.close();
        done(null, false);
        return;
      }
      const socket = client.conn as TLSSocket;
      const peer =
        typeof socket.getPeerCertificate === "function" ? socket.getPeerCertificate(true) : undefined;
      if (!peer?.raw && username !== undefined && options.secretLogin) {
        // No client certificate: a device born with a secret (custom authorizer).
        void secretLogin(client, username, password ? Buffer.from(password).toString("utf8") : "", done);
        return;
      }
      const request = {
        clientId: client.id,
        ...(peer?.raw ? { certificateDer: new Uint8Array(peer.raw) } : {}),
      };
      decideConnect({ iot, authorizer, accountId: options.accountId, publishEvent }, request).then(
        (decision) => {
          logDecision(client.id, decision);
          if (decision.outcome === "accepted") {
            sessions.set(client, decision.session);
            done(null, true);
          } else {
            // No CONNACK: AWS IoT Core (MQTT 3.1.1) just drops a connection it refuses.
            client.close();
            done(null, false);
          }
        },
        (error: unknown) => {
          logger.error("mqtt: connect failed", {
            clientId: logged(client.id),
            error: error instanceof Error ? error.name : "unknown",
          });
          client.close();
          done(null, false);
        },
      );
    },
    authorizePublish(client, packet, callback) {
      if (!client) return callback(null); // the endpoint's own messages (registration events)
      // An error closes the connection: AWS IoT disconnects a client on a topic beyond its
      // limits and on an unauthorized publish (its will message included).
      if (refuseTopic(client, packet.topic, "publish")) return callback(new Error("topic refused"));
      const resource = topicArn(authorizer.scope, packet.topic);
      const allowed =
        authorize(client, "iot:Publish", resource, packet.topic) &&
        (!packet.retain || authorize(client, "iot:RetainPublish", resource, packet.topic));
      callback(allowed ? null : new Error("not authorized to publish"));
    },
    authorizeSubscribe(client, subscription, callback) {
      const filter = subscription.topic;
      if (client && refuseTopic(client, filter, "subscribe")) {
        return callback(new Error("topic filter refused"), null); // closes the connection
      }
      const allowed = authorize(client, "iot:Subscribe", topicFilterArn(authorizer.scope, filter), filter);
      callback(null, allowed ? subscription : null); // null: SUBACK 0x80 for this filter
    },
    authorizeForward(client, packet) {
      if (packet.topic.startsWith("$SYS/")) return null;
      // A service push for this very connection (its registration or activation answer).
      if (client && pushes.get(client)?.topic === packet.topic) return packet;
      // Fleet provisioning answers go only to the connection that asked; requests to no one.
      if (fleet && FleetProvisioningApi.isServiceTopic(packet.topic) && !fleet.forward(client, packet)) {
        return null;
      }
      const resource = topicArn(authorizer.scope, packet.topic);
      return authorize(client, "iot:Receive", resource, packet.topic, "debug") ? packet : null;
    },
  });
  broker.on("publish", (packet: AedesPublishPacket, client: Client | null) => {
    if (packet.topic.startsWith("$SYS/")) return;
    const session = client ? sessions.get(client) : undefined;
    const principal = session && (isAuthorizerSession(session) ? session.principalId : session.certificateId);
    void rules.dispatch(packet.topic, packet.payload, {
      ...(client ? { clientId: client.id } : {}),
      ...(principal ? { principal } : {}),
    });
  });
  broker.on("publish", (packet: AedesPublishPacket, client: Client | null) => {
    const session = client ? sessions.get(client) : undefined;
    if (fleet && client && session && !isAuthorizerSession(session)) {
      fleet.handle({ client, session }, packet.topic, packet.payload);
    }
  });
  // Lifecycle events, published by AWS IoT for every client id without '#' or '+'
  // (https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html): for a
  // certificate connection `principalIdentifier` is the certificate id. Fleet provisioning's commit
  // rule listens to `connected`.
  const presence = (client: Client, eventType: "connected" | "disconnected") => {
    const session = sessions.get(client);
    if (!session || /[#+]/.test(client.id)) return;
    void publishEvent(`$aws/events/presence/${eventType}/${client.id}`, {
      clientId: client.id,
      timestamp: Date.now(),
      eventType,
      sessionIdentifier: session.sessionIdentifier,
      principalIdentifier: isAuthorizerSession(session) ? session.principalId : session.certificateId,
      versionNumber: 0,
      ...(eventType === "disconnected" ? { clientInitiatedDisconnect: false } : {}),
    }).catch(() => undefined);
  };
  broker.on("client", (client: Client) => presence(client, "connected"));
  broker.on("clientDisconnect", (client: Client) => presence(client, "disconnected"));
  /** Service messages for one connection (registration / activation answers), sent after CONNACK. */
  const pushes = new WeakMap<Client, ServicePush>();
  broker.on("clientReady", (client: Client) => {
    const push = pushes.get(client);
    if (!push) return;
    client.publish(
      {
        cmd: "publish",
        topic: push.topic,
        payload: Buffer.from(JSON.stringify(push.payload)),
        qos: 0,
        retain: false,
        dup: false,
      },
      () => {
        pushes.delete(client);
        if (push.thenClose) setTimeout(() => client.close(), 50);
      },
    );
  });

  async function secretLogin(
    client: Client,
    username: string,
    password: string,
    done: (error: null, success: boolean | null) => void,
  ): Promise<void> {
    try {
      const decision = await decideSecretLogin(options.secretLogin!, {
        clientId: client.id,
        username,
        password,
      });
      if (decision.outcome === "refused") {
        logger.warn("mqtt: connect", {
          clientId: logged(client.id),
          outcome: "refused",
          reason: decision.reason,
        });
        client.close();
        return done(null, false);
      }
      sessions.set(client, decision.session);
      if (decision.push) pushes.set(client, decision.push);
      logger.info("mqtt: connect", {
        clientId: logged(client.id),
        outcome: "accepted",
        principalId: decision.session.principalId,
        ...(decision.push ? { push: decision.push.topic } : {}),
      });
      done(null, true);
    } catch (error) {
      logger.error("mqtt: connect failed", {
        clientId: logged(client.id),
        error: error instanceof Error ? error.name : "unknown",
      });
      client.close();
      done(null, false);
    }
  }

  broker.on("clientError", (client: Client, error: Error) =>
    logger.debug("mqtt: client error", { clientId: logged(client.id), error: error.message }),
  );

  function publishEvent(topic: string, event: object): Promise<void> {
    const packet: PublishPacket = {
      cmd: "publish",
      topic,
      payload: Buffer.from(JSON.stringify(event)),
      qos: 0,
      retain: false,
      dup: false,
    };
    return new Promise((resolve, reject) =>
      broker.publish(packet, (error) => (error ? reject(error) : resolve())),
    );
  }

  /** True (and logged) when a topic or filter is beyond AWS IoT Core's limits. */
  function refuseTopic(client: Client, topic: string, use: "publish" | "subscribe"): boolean {
    const violation = topicViolation(topic, use);
    if (violation) {
      logger.warn("mqtt: topic refused, client disconnected", {
        clientId: logged(client.id),
        use,
        topic: logged(topic),
        reason: violation,
      });
    }
    return violation !== undefined;
  }

  function authorize(
    client: Client,
    action: IotAction,
    resource: string,
    topic: string,
    level: "warn" | "debug" = "warn",
  ): boolean {
    const session = sessions.get(client);
    if (!session) return false;
    const decision = authorizer.authorize(session, action, resource);
    if (!decision.allowed) {
      logger[level]("mqtt: denied", {
        clientId: logged(session.clientId),
        ...(isAuthorizerSession(session)
          ? { principalId: session.principalId }
          : { certificateId: session.certificateId }),
        ...(decision.thingName ? { thingName: decision.thingName } : {}),
        action,
        topic: logged(topic),
        reason: decision.reason,
      });
    }
    return decision.allowed;
  }

  function logDecision(clientId: string, decision: ConnectDecision) {
    const fields: Record<string, unknown> = { clientId: logged(clientId), outcome: decision.outcome };
    if (decision.certificateId) fields.certificateId = decision.certificateId;
    if (decision.thingName) fields.thingName = decision.thingName;
    if (decision.outcome === "refused") {
      fields.reason = decision.reason;
      if (decision.caCertificateId) fields.caCertificateId = decision.caCertificateId;
      if (decision.detail) fields.detail = decision.detail;
      if (REFUSAL_IS_EXPECTED.has(decision.reason)) logger.info("mqtt: connect", fields);
      else logger.warn("mqtt: connect", fields);
    } else {
      logger.info("mqtt: connect", fields);
    }
  }

  const sockets = new Set<Socket>();
  const server = createServer(
    {
      key: identity.keyPem,
      cert: identity.certPem,
      requestCert: true,
      rejectUnauthorized: false, // the certificate is judged against the registry, in authenticate
      minVersion: "TLSv1.2",
      // Without it the small CONNACK waits for the client's ACK of the TLS 1.3 session tickets
      // sent just before (Nagle): ~40 ms on every connect.
      noDelay: true,
      // Node's default is 2 minutes. It ends a handshake that stalls, and a socket that never
      // starts one, with a tlsClientError (below, which closes the socket).
      handshakeTimeout,
    },
    (socket) => broker.handle(socket),
  );
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", (error: Error, socket: TLSSocket) => {
    // With a tlsClientError listener Node leaves the socket open (a handshake timeout included):
    // close it here.
    socket.destroy();
    logger.debug("mqtt: TLS handshake failed", { error: error.message });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw error;
  }
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;

  return {
    port,
    url: `mqtts://localhost:${port}`,
    publish: (topic, payload) => publishEvent(topic, payload as object),
    async close() {
      fleet?.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * Client ids and topics come from devices: cap what goes into a log line (without cutting a
 * surrogate pair). Escaping control characters is the logger's job (console-logger.ts; the
 * Lambda's Powertools Logger writes JSON).
 */
function logged(text: string): string {
  if (text.length <= 128) return text;
  const end = /[\uD800-\uDBFF]/.test(text.charAt(127)) ? 127 : 128;
  return `${text.slice(0, end)}...`;
}
