/**
 * Test helper: a device born with a secret on the local stack's MQTT endpoint, through the real
 * `mqtt` client over TLS verified against the stack's root CA (servername `localhost`), logging in
 * with CONNECT fields (client id, username, password) as the credentials module builds them.
 */
import mqtt, { type MqttClient } from "mqtt";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import type { MqttCredentials } from "#credentials/mqtt-credentials.ts";

/** What the helpers need of a (test) local stack. */
export type MqttTarget = { endpoints: { mqtt: string }; rootCaPem: string };

/** Starts one connection attempt with `login` (no reconnect, 5 s CONNACK timeout); events are the caller's. */
export function secretLoginClient(stack: MqttTarget, login: MqttCredentials): MqttClient {
  return mqtt.connect(stack.endpoints.mqtt, {
    ...login,
    ca: stack.rootCaPem,
    servername: "localhost",
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
}

/** An Alibaba device (sign with its device secret, timestamp now), connected; rejects on the first error. */
export function connectAliyunDevice(
  stack: MqttTarget,
  device: { productKey: string; deviceName: string; deviceSecret: string },
): Promise<MqttClient> {
  const login = buildAliyunMqttCredentials({ ...device, timestamp: Date.now() });
  return new Promise<MqttClient>((resolve, reject) => {
    const client = secretLoginClient(stack, login);
    client.once("connect", () => resolve(client));
    client.once("error", reject);
  });
}
