/**
 * Test helper: a device on the local MQTT endpoint through the real `mqtt` client, over TLS that
 * verifies the endpoint against the stack's root CA (servername `localhost`), as firmware would.
 */
import mqtt, { type MqttClient } from "mqtt";
import { topicMatchesFilter } from "#local/mqtt/topic-filter.ts";

/** A device's TLS client credentials (PEM); `certPem` may carry the CA chain after the certificate. */
export type DeviceCredentials = { keyPem: string; certPem: string };

/** The result of one connection attempt. */
export type ConnectResult =
  | { connected: true; client: MqttClient }
  | { connected: false; error?: string; closedWithoutConnack: boolean };

/**
 * Connects once (no automatic reconnect). Resolves `connected: false` when the endpoint closes
 * the connection instead of accepting it; `closedWithoutConnack` says it sent no CONNACK (AWS's
 * way of refusing).
 */
export function connectDevice(options: {
  url: string;
  caPem: string;
  clientId: string;
  credentials?: DeviceCredentials;
  timeoutMs?: number;
}): Promise<ConnectResult> {
  return new Promise((resolve) => {
    let error: string | undefined;
    let connackRefused = false;
    const client = mqtt.connect(options.url, {
      clientId: options.clientId,
      ca: options.caPem,
      servername: "localhost",
      rejectUnauthorized: true,
      ...(options.credentials ? { key: options.credentials.keyPem, cert: options.credentials.certPem } : {}),
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: options.timeoutMs ?? 5000,
    });
    client.once("connect", () => resolve({ connected: true, client }));
    client.on("error", (e: Error & { code?: number }) => {
      error = e.message;
      if (typeof e.code === "number") connackRefused = true;
    });
    client.once("close", () => {
      if (client.connected) return;
      client.end(true);
      resolve({ connected: false, closedWithoutConnack: !connackRefused, ...(error ? { error } : {}) });
    });
  });
}

/** Connects and fails the test unless the endpoint accepts. */
export async function connectOrFail(options: Parameters<typeof connectDevice>[0]): Promise<MqttClient> {
  const result = await connectDevice(options);
  if (!result.connected) throw new Error(`${options.clientId} was refused: ${result.error ?? "closed"}`);
  return result.client;
}

/** Subscribes to one filter and returns the granted QoS: `[1]`, or `[128]` when refused. */
export function subscribe(client: MqttClient, filter: string): Promise<number[]> {
  return new Promise((resolve, reject) =>
    client.subscribe(filter, { qos: 1 }, (error, granted) => {
      // mqtt.js reports a SUBACK failure (0x80) as an error carrying the SUBACK packet.
      const suback = (error as (Error & { packet?: { granted?: unknown[] } }) | null)?.packet;
      if (error && Array.isArray(suback?.granted)) resolve(suback.granted.map(Number));
      else if (error) reject(error);
      else resolve((granted ?? []).map((g) => g.qos));
    }),
  );
}

/** The next message on a topic, or undefined after `timeoutMs`. */
/** The next message on a topic (or a topic filter with + and #), or undefined after the timeout. */
export function nextMessage(
  client: MqttClient,
  topic: string,
  timeoutMs = 3000,
): Promise<{ topic: string; payload: string } | undefined> {
  return new Promise((resolve) => {
    const onMessage = (received: string, payload: Buffer) => {
      if (!topicMatchesFilter(topic, received)) return;
      finish({ topic: received, payload: payload.toString("utf8") });
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const finish = (message: { topic: string; payload: string } | undefined) => {
      clearTimeout(timer);
      client.off("message", onMessage);
      resolve(message);
    };
    client.on("message", onMessage);
  });
}

/** Resolves when the connection closes (or at once if it is closed). */
export function closed(client: MqttClient, timeoutMs = 5000): Promise<boolean> {
  if (!client.connected && client.disconnected) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    client.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Ends a client without waiting for in-flight messages. */
export function endClient(client: MqttClient | undefined): Promise<void> {
  if (!client) return Promise.resolve();
  return new Promise((resolve) => client.end(true, {}, () => resolve()));
}
