/**
 * Test helper: an "observer" MQTT client with its own AWS IoT-issued certificate and a policy that
 * lets it watch every thing's topics and the JITR registration events, and publish to things'
 * topics (commands), as an operator's tool would.
 */
import {
  AttachPolicyCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  type IoTClient,
} from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { connectOrFail, subscribe } from "./mqtt-device.ts";

const OBSERVER_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    { Effect: "Allow", Action: "iot:Connect", Resource: "arn:aws:iot:*:*:client/observer-*" },
    { Effect: "Allow", Action: "iot:Publish", Resource: "arn:aws:iot:*:*:topic/things/*" },
    {
      Effect: "Allow",
      Action: "iot:Subscribe",
      Resource: [
        "arn:aws:iot:*:*:topicfilter/things/*",
        "arn:aws:iot:*:*:topicfilter/$aws/events/certificates/registered/*",
      ],
    },
    {
      Effect: "Allow",
      Action: "iot:Receive",
      Resource: [
        "arn:aws:iot:*:*:topic/things/*",
        "arn:aws:iot:*:*:topic/$aws/events/certificates/registered/*",
      ],
    },
  ],
});

/**
 * Connects an observer subscribed to `things/+/#` and `$aws/events/certificates/registered/+`.
 * @param name a suffix of the client id `observer-{name}`
 */
export async function connectObserver(
  stack: { iotClient: IoTClient; endpoints: { mqtt: string }; rootCaPem: string },
  name: string,
): Promise<MqttClient> {
  const policyName = `test-observer-${name}`;
  const created = await stack.iotClient.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
  await stack.iotClient.send(new CreatePolicyCommand({ policyName, policyDocument: OBSERVER_POLICY }));
  await stack.iotClient.send(new AttachPolicyCommand({ policyName, target: created.certificateArn }));
  const client = await connectOrFail({
    url: stack.endpoints.mqtt,
    caPem: stack.rootCaPem,
    clientId: `observer-${name}`,
    credentials: { keyPem: created.keyPair?.PrivateKey ?? "", certPem: created.certificatePem ?? "" },
  });
  for (const filter of ["things/+/#", "$aws/events/certificates/registered/+"]) {
    const granted = await subscribe(client, filter);
    if (granted[0] !== 1) throw new Error(`the observer could not subscribe to ${filter}`);
  }
  return client;
}
