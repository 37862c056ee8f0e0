// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${iot:...}" is IoT policy variable syntax, not a JS template.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  CreateThingCommand,
} from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { consoleLogger } from "#local/console-logger.ts";
import { DEVICE_POLICY_NAME } from "#templates/catalog.ts";
import { startTestStack } from "#test/support/local-stack.ts";
import {
  connectDevice,
  connectOrFail,
  type DeviceCredentials,
  endClient,
  nextMessage,
} from "./mqtt-device.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

const policy = (...statements: object[]) => JSON.stringify({ Version: "2012-10-17", Statement: statements });
const CONNECT_ANY = { Effect: "Allow", Action: "iot:Connect", Resource: "arn:aws:iot:*:*:client/*" };

/** What became of a QoS 1 publish: PUBACK, or the endpoint closed the connection. */
function publishOutcome(
  client: MqttClient,
  topic: string,
  options: { retain?: boolean } = {},
): Promise<"acknowledged" | "disconnected"> {
  return new Promise((resolve) => {
    const onClose = () => resolve("disconnected");
    client.once("close", onClose);
    client.publish(topic, "{}", { qos: 1, retain: options.retain ?? false }, (error) => {
      client.off("close", onClose);
      resolve(error ? "disconnected" : "acknowledged");
    });
  });
}

/** What became of a subscription: granted, refused with SUBACK 0x80, or the connection closed. */
function subscribeOutcome(
  client: MqttClient,
  filter: string,
): Promise<"granted" | "refused" | "disconnected"> {
  return new Promise((resolve) => {
    const onClose = () => resolve("disconnected");
    client.once("close", onClose);
    client.subscribe(filter, { qos: 1 }, (error, granted) => {
      client.off("close", onClose);
      const suback = (error as (Error & { packet?: { granted?: unknown[] } }) | null)?.packet;
      if (error && Array.isArray(suback?.granted)) resolve(suback.granted[0] === 128 ? "refused" : "granted");
      else if (error) resolve("disconnected");
      else resolve(granted?.[0]?.qos === 128 ? "refused" : "granted");
    });
  });
}

/**
 * Findings of the security review of the local MQTT endpoint, each checked over TLS with the
 * real `mqtt` client: thing policy variables resolve only for the thing attached to the
 * certificate; a retained publish needs iot:RetainPublish; topics beyond AWS IoT Core's limits
 * disconnect the client; a client id cannot forge a log line.
 */
describe("MQTT endpoint: security review findings", () => {
  let stack: Stack;
  const logLines: string[] = [];
  const clients: MqttClient[] = [];

  before(async () => {
    stack = await startTestStack({
      logger: consoleLogger({ level: "debug", color: false, write: (line) => logLines.push(line) }),
    });
  });
  after(async () => {
    for (const client of clients) await endClient(client);
    await stack?.stop();
  });

  /** A new ACTIVE certificate with the named policies (created from documents when given). */
  const certificate = async (
    policies: Record<string, string | undefined>,
  ): Promise<DeviceCredentials & { arn: string }> => {
    const created = await stack.iotClient.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
    const arn = created.certificateArn ?? "";
    for (const [policyName, policyDocument] of Object.entries(policies)) {
      if (policyDocument) await stack.iotClient.send(new CreatePolicyCommand({ policyName, policyDocument }));
      await stack.iotClient.send(new AttachPolicyCommand({ policyName, target: arn }));
    }
    return { keyPem: created.keyPair?.PrivateKey ?? "", certPem: created.certificatePem ?? "", arn };
  };
  const thing = async (thingName: string, principal?: string) => {
    await stack.iotClient.send(new CreateThingCommand({ thingName }));
    if (principal) await stack.iotClient.send(new AttachThingPrincipalCommand({ thingName, principal }));
  };
  const connect = async (clientId: string, credentials: DeviceCredentials) => {
    const client = await connectOrFail({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId,
      credentials,
    });
    clients.push(client);
    return client;
  };

  describe("${iot:Connection.Thing.ThingName} resolves only for a thing attached to the certificate", () => {
    const thingPolicy = policy(CONNECT_ANY, {
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: "arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*",
    });

    it("lets a device publish on its own thing's topics", async () => {
      const own = await certificate({ "hardening-thing-policy": thingPolicy });
      await thing("hardening-own-1", own.arn);
      const client = await connect("hardening-own-1", own);
      assert.equal(await publishOutcome(client, "things/hardening-own-1/telemetry"), "acknowledged");
    });

    it("disconnects a client that takes another thing's name as client id", async () => {
      const victim = await certificate({});
      await thing("hardening-victim-1", victim.arn);
      const intruder = await certificate({ "hardening-thing-policy": undefined });
      const client = await connect("hardening-victim-1", intruder);
      assert.equal(await publishOutcome(client, "things/hardening-victim-1/commands"), "disconnected");
      const denied = logLines.filter(
        (line) => line.includes("mqtt: denied") && line.includes("hardening-victim-1"),
      );
      assert.equal(denied.length, 1, logLines.join(""));
      assert.doesNotMatch(denied[0] ?? "", /thingName=/, "the thing is not this connection's");
    });
  });

  describe("a retained publish needs iot:RetainPublish as well as iot:Publish", () => {
    const publishPolicy = policy(CONNECT_ANY, {
      Effect: "Allow",
      Action: ["iot:Publish", "iot:Receive", "iot:Subscribe"],
      Resource: ["arn:aws:iot:*:*:topic/retained/*", "arn:aws:iot:*:*:topicfilter/retained/*"],
    });
    const retainPolicy = policy({
      Effect: "Allow",
      Action: "iot:RetainPublish",
      Resource: "arn:aws:iot:*:*:topic/retained/*",
    });

    it("disconnects a retained publish without iot:RetainPublish; a plain publish is fine", async () => {
      const credentials = await certificate({ "hardening-publish": publishPolicy });
      const retaining = await connect("hardening-retain-1", credentials);
      assert.equal(await publishOutcome(retaining, "retained/state", { retain: true }), "disconnected");
      const plain = await connect("hardening-retain-1", credentials);
      assert.equal(await publishOutcome(plain, "retained/state"), "acknowledged");
    });

    it("keeps a retained message when iot:RetainPublish is granted", async () => {
      const credentials = await certificate({
        "hardening-publish": undefined,
        "hardening-retain": retainPolicy,
      });
      const publisher = await connect("hardening-retain-2", credentials);
      assert.equal(await publishOutcome(publisher, "retained/kept", { retain: true }), "acknowledged");
      const subscriber = await connect("hardening-retain-3", credentials);
      const message = nextMessage(subscriber, "retained/kept");
      assert.equal(await subscribeOutcome(subscriber, "retained/kept"), "granted");
      assert.equal((await message)?.payload, "{}", "delivered to a later subscriber: it was retained");
    });

    it("refuses retained publishes from a device with the shipped device policy (it grants no RetainPublish)", async () => {
      const credentials = await certificate({ [DEVICE_POLICY_NAME]: undefined });
      await thing("SN-HARDEN-1", credentials.arn);
      const device = await connect("SN-HARDEN-1", credentials);
      assert.equal(await publishOutcome(device, "things/SN-HARDEN-1/telemetry"), "acknowledged");
      assert.equal(
        await publishOutcome(device, "things/SN-HARDEN-1/state", { retain: true }),
        "disconnected",
      );
    });
  });

  describe("topics beyond AWS IoT Core's limits disconnect the client, whatever the policy allows", () => {
    const allowAll = policy(CONNECT_ANY, {
      Effect: "Allow",
      Action: ["iot:Publish", "iot:Receive", "iot:Subscribe"],
      Resource: ["arn:aws:iot:*:*:topic/*", "arn:aws:iot:*:*:topicfilter/*"],
    });
    let credentials: DeviceCredentials;
    before(async () => {
      credentials = await certificate({ "hardening-allow-all": allowAll });
    });
    const publishing = async (topic: string) =>
      publishOutcome(await connect("hardening-limits", credentials), topic);
    const subscribing = async (filter: string) =>
      subscribeOutcome(await connect("hardening-limits", credentials), filter);

    it("topic names: 256 bytes of UTF-8 and 7 slashes at most", async () => {
      assert.equal(await publishing(`t/${"a".repeat(254)}`), "acknowledged", "256 bytes");
      assert.equal(await publishing(`t/${"é".repeat(127)}`), "acknowledged", "256 bytes, 129 characters");
      assert.equal(await publishing(`t/${"a".repeat(255)}`), "disconnected", "257 bytes");
      assert.equal(await publishing(`t/${"é".repeat(128)}`), "disconnected", "258 bytes, 130 characters");
      assert.equal(await publishing(`t/${"a".repeat(60 * 1024)}`), "disconnected", "60 KB");
      assert.equal(await publishing("a/b/c/d/e/f/g/h"), "acknowledged", "7 slashes");
      assert.equal(await publishing("a/b/c/d/e/f/g/h/i"), "disconnected", "8 slashes");
    });

    it("Basic Ingest's $aws/rules/{rule}/ prefix does not count; other $ namespaces are reserved", async () => {
      assert.equal(await publishing("$aws/rules/some_rule/a/b/c/d/e/f/g/h"), "acknowledged");
      assert.equal(await publishing("$aws/rules/some_rule/a/b/c/d/e/f/g/h/i"), "disconnected");
      assert.equal(await publishing("$custom/topic"), "disconnected");
    });

    it("topic filters: the same limits, and no subscription to Basic Ingest topics", async () => {
      assert.equal(await subscribing("a/+/c/d/e/f/g/#"), "granted", "7 slashes");
      assert.equal(await subscribing("a/+/c/d/e/f/g/h/#"), "disconnected", "8 slashes");
      assert.equal(await subscribing(`t/${"a".repeat(254)}`), "granted", "256 bytes");
      assert.equal(await subscribing(`t/${"a".repeat(60 * 1024)}/#`), "disconnected", "60 KB");
      assert.equal(await subscribing("$aws/rules/some_rule/#"), "disconnected");
      assert.equal(await subscribing("$SYS/#"), "disconnected");
    });

    it("logs the refusal on one line, the topic cut short", () => {
      const refused = logLines.filter((line) => line.includes("mqtt: topic refused"));
      assert.ok(refused.length >= 10, `${refused.length} refusals logged`);
      assert.ok(refused.every((line) => line.length < 1024));
    });
  });

  it("writes a client id carrying a forged log line as one line, escaped", async () => {
    const forged = "evil\n12:00:00.000 INFO vend: certificate vended serialNumber=SN-1 certificateId=abc";
    const before = logLines.length;
    const result = await connectDevice({
      url: stack.endpoints.mqtt,
      caPem: stack.rootCaPem,
      clientId: forged,
    });
    assert.equal(result.connected, false, "no certificate: refused");
    const written = logLines.slice(before);
    assert.ok(
      written.every((line) => line.indexOf("\n") === line.length - 1),
      "one newline per write",
    );
    const mentioning = written.filter((line) => line.includes("certificate vended"));
    assert.equal(mentioning.length, 1, written.join(""));
    assert.match(
      mentioning[0] ?? "",
      / WARN mqtt: connect clientId="evil\\n12:00:00.000 INFO vend: certificate vended /,
    );
    assert.ok(!written.some((line) => line.startsWith("12:00:00.000 INFO vend")), "no forged line");
  });
});
