/**
 * Test helper: a device speaking AWS IoT's fleet provisioning MQTT API with the plain `mqtt`
 * client, as the API documents it: subscribe to `…/accepted` and `…/rejected`, publish the
 * request, take the answer.
 */
import type { MqttClient } from "mqtt";
import { subscribe } from "#test/local/mqtt/mqtt-device.ts";

export const CREATE_KEYS = "$aws/certificates/create/json";
export const CREATE_FROM_CSR = "$aws/certificates/create-from-csr/json";
export const provisionTopic = (templateName: string) =>
  `$aws/provisioning-templates/${templateName}/provision/json`;

/** An answer of the API: which topic it came on and its JSON body. */
export type FleetAnswer = { outcome: "accepted" | "rejected"; body: Record<string, unknown> };

/** Subscribes to a request's answer topics (`…/+`); resolves with the SUBACK codes. */
export function subscribeAnswers(client: MqttClient, requestTopic: string): Promise<number[]> {
  return subscribe(client, `${requestTopic}/+`);
}

/**
 * Publishes one request (subscribed to its answers first) and resolves with the answer that
 * arrives on `…/accepted` or `…/rejected`; rejects if the connection closes first.
 */
export async function fleetRequest(
  client: MqttClient,
  requestTopic: string,
  payload: string | Record<string, unknown>,
): Promise<FleetAnswer> {
  const granted = await subscribeAnswers(client, requestTopic);
  if (granted[0] === 128) throw new Error(`subscription to ${requestTopic}/+ refused`);
  return new Promise((resolve, reject) => {
    const onMessage = (topic: string, message: Buffer) => {
      if (topic !== `${requestTopic}/accepted` && topic !== `${requestTopic}/rejected`) return;
      finish();
      resolve({
        outcome: topic.endsWith("/accepted") ? "accepted" : "rejected",
        body: JSON.parse(message.toString("utf8")) as Record<string, unknown>,
      });
    };
    const onClose = () => {
      finish();
      reject(new Error(`the connection closed before an answer to ${requestTopic}`));
    };
    const finish = () => {
      client.off("message", onMessage);
      client.off("close", onClose);
    };
    client.on("message", onMessage);
    client.once("close", onClose);
    const body = typeof payload === "string" ? payload : JSON.stringify(payload);
    client.publish(requestTopic, body, { qos: 1 });
  });
}
