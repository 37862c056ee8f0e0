import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { iot, mqtt } from "aws-iot-device-sdk-v2";
import mqttJs, { type MqttClient } from "mqtt";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import { buildAliyunConnwlCredentials } from "#credentials/aliyun-register.ts";
import { buildEnosMqttCredentials } from "#credentials/enos-mqtt.ts";
import type { MqttCredentials } from "#credentials/mqtt-credentials.ts";
import { seedDemo } from "#local/seed-demo.ts";
import { startTestStack } from "#test/support/local-stack.ts";
import { onramp } from "#test/support/run-cli.ts";
import { PROJECT_ROOT, type SpawnedStack, spawnStack } from "#test/support/spawned-stack.ts";

/**
 * Interoperability of devices born with a secret (issue 9) against the local stack:
 * - Eclipse Mosquitto's `mosquitto_pub -u/-P -i` with the computed client id (Alibaba's has `|`
 *   and `,`; EnOS's too), over TLS without a client certificate, the local root CA as --cafile;
 *   a message published arrives at a subscriber of the device's topic; a wrong password refused;
 * - the official AWS IoT Device SDK v2 for JavaScript (aws-crt's native client) through its
 *   custom-authorizer builder (`with_custom_authorizer`: it adds
 *   `?x-amz-customauthorizer-name=...` to the username, ALPN `mqtt` and port 443, which here is
 *   set back to the local port), connecting with username/password and publishing;
 * - the copy-paste commands `npm start` prints for each demo product, run as printed.
 * Run with `npm run test:interop`; needs mosquitto-clients.
 */
const missing = spawnSync("mosquitto_pub", ["--help"]).error !== undefined;
const skip = missing
  ? "mosquitto_pub not found: install mosquitto-clients (apt-get install mosquitto-clients)"
  : false;

type Run = { code: number; stdout: string; stderr: string };
type Stack = Awaited<ReturnType<typeof startTestStack>>;

function run(command: string, args: string[], timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

describe("devices born with a secret: mosquitto_pub and the AWS IoT Device SDK v2", { skip }, () => {
  let stack: Stack;
  let dir: string;
  let rootCaFile: string;
  let demo: Awaited<ReturnType<typeof seedDemo>>["secretProducts"];

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-secret-interop-"));
    rootCaFile = join(dir, "root-ca.pem");
    writeFileSync(rootCaFile, stack.rootCaPem);
    demo = (await seedDemo(stack.services)).secretProducts;
  });
  after(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** mosquitto_pub with username/password, no client certificate. */
  const mosquittoPub = (login: MqttCredentials, topic: string, message: string) =>
    run("mosquitto_pub", [
      ...["--cafile", rootCaFile, "-h", "localhost", "-p", String(stack.mqtt.port)],
      ...["-i", login.clientId, "-u", login.username, "-P", login.password],
      ...["-t", topic, "-m", message, "-q", "1", "-d"],
    ]);

  /** A real mqtt.js device subscribed to a topic filter (logged in with its own credentials). */
  async function subscriber(login: MqttCredentials, filter: string): Promise<MqttClient> {
    const client = await mqttJs.connectAsync(stack.endpoints.mqtt, {
      ...login,
      ca: stack.rootCaPem,
      servername: "localhost",
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    await client.subscribeAsync(filter, { qos: 1 });
    return client;
  }
  const nextMessage = (client: MqttClient, timeoutMs = 5000) =>
    new Promise<{ topic: string; payload: string } | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      client.once("message", (topic, payload) => {
        clearTimeout(timer);
        resolve({ topic, payload: payload.toString("utf8") });
      });
    });

  it("mosquitto_pub -u/-P with Alibaba's computed client id ('|' and ','): the message arrives; a wrong password is refused", async () => {
    const deviceName = "lamp-0001";
    const deviceSecret = demo.aliyun.deviceSecrets[deviceName] ?? "";
    const topic = `/demo-aliyun/${deviceName}/user/update`;
    // The same device watches its topic on a second connection (its own, signed client id).
    const watch = await subscriber(
      buildAliyunMqttCredentials({
        productKey: "demo-aliyun",
        deviceName,
        deviceSecret,
        clientId: "watcher",
        timestamp: Date.now(),
      }),
      `/demo-aliyun/${deviceName}/user/#`,
    );
    try {
      const login = buildAliyunMqttCredentials({
        productKey: "demo-aliyun",
        deviceName,
        deviceSecret,
        timestamp: Date.now(),
      });
      assert.match(login.clientId, /\|securemode=2,signmethod=hmacsha256,timestamp=\d+\|$/);
      const arrived = nextMessage(watch);
      const published = await mosquittoPub(login, topic, '{"from":"mosquitto"}');
      assert.equal(published.code, 0, published.stderr + published.stdout);
      // mosquitto_pub -d shows the client id it sent, unchanged.
      assert.ok(published.stdout.includes(`Client ${login.clientId} sending CONNECT`), published.stdout);
      assert.deepEqual(await arrived, { topic, payload: '{"from":"mosquitto"}' });

      const wrong = await mosquittoPub({ ...login, password: "0".repeat(64) }, topic, "{}");
      // Refused as AWS IoT refuses: the connection is closed without a CONNACK.
      assert.notEqual(wrong.code, 0, "a wrong password is refused");
      assert.match(wrong.stderr + wrong.stdout, /not authori[sz]ed|refused|connection was lost/i);
    } finally {
      watch.end(true);
    }
  });

  it("mosquitto_pub as an EnOS device (SecureMode 2) and with connwl after regnwl (token from `onramp device connect`)", async () => {
    const enos = buildEnosMqttCredentials({
      productKey: "demo-enos",
      deviceKey: "meter-0001",
      secret: demo.enos.deviceSecrets["meter-0001"] ?? "",
      timestamp: Date.now(),
    });
    const meter = await mosquittoPub(enos, "/sys/demo-enos/meter-0001/thing/measurepoint/post", "{}");
    assert.equal(meter.code, 0, meter.stderr + meter.stdout);

    const endpoints = join(dir, "endpoints.json");
    writeFileSync(endpoints, JSON.stringify({ ...stack.endpoints, rootCa: rootCaFile }));
    const saved = join(dir, "plug-mq.json");
    await onramp(
      ...["device", "connect", "--product-key", "demo-dynamic", "--device-name", "plug-mq"],
      ...[
        "--product-secret",
        demo.dynamic.productSecret,
        "--regnwl",
        "--save",
        saved,
        "--endpoints",
        endpoints,
      ],
    );
    const { clientId, deviceToken } = (await import(saved, { with: { type: "json" } })).default as {
      clientId: string;
      deviceToken: string;
    };
    const connwl = buildAliyunConnwlCredentials({
      productKey: "demo-dynamic",
      deviceName: "plug-mq",
      clientId,
      deviceToken,
    });
    const plug = await mosquittoPub(connwl, "/demo-dynamic/plug-mq/user/update", "{}");
    assert.equal(plug.code, 0, plug.stderr + plug.stdout);
    const otherDevice = await mosquittoPub(connwl, "/demo-dynamic/plug-other/user/update", "{}");
    // QoS 1 to a topic the policy denies: the endpoint disconnects; mosquitto_pub reports it.
    assert.ok(
      otherDevice.code !== 0 || /Connection lost|disconnect/i.test(otherDevice.stderr + otherDevice.stdout),
      otherDevice.stdout + otherDevice.stderr,
    );
  });

  it("the AWS IoT Device SDK v2 connects through its custom-authorizer builder with username/password and publishes", async () => {
    const deviceName = "lamp-0002";
    const deviceSecret = demo.aliyun.deviceSecrets[deviceName] ?? "";
    const login = buildAliyunMqttCredentials({
      productKey: "demo-aliyun",
      deviceName,
      deviceSecret,
      timestamp: Date.now(),
    });
    const watch = await subscriber(
      buildAliyunMqttCredentials({
        productKey: "demo-aliyun",
        deviceName,
        deviceSecret,
        clientId: "sdk-watcher",
        timestamp: Date.now(),
      }),
      `/demo-aliyun/${deviceName}/user/#`,
    );
    const config = (password: string) =>
      iot.AwsIotMqttConnectionConfigBuilder.new_default_builder()
        .with_custom_authorizer(login.username, "onramp-authorizer", "", password)
        // with_custom_authorizer sets AWS's port 443 (ALPN mqtt); the local endpoint listens elsewhere.
        .with_port(stack.mqtt.port)
        .with_certificate_authority(stack.rootCaPem)
        .with_endpoint("localhost")
        .with_client_id(login.clientId)
        .with_clean_session(true)
        .build();
    try {
      const built = config(login.password);
      assert.match(
        String(built.username),
        /^lamp-0002&demo-aliyun\?x-amz-customauthorizer-name=onramp-authorizer/,
        "the SDK appends the authorizer name; the authorizer strips it",
      );
      const connection = new mqtt.MqttClient().new_connection(built);
      await connection.connect();
      const arrived = nextMessage(watch);
      await connection.publish(
        `/demo-aliyun/${deviceName}/user/update`,
        '{"from":"device-sdk"}',
        mqtt.QoS.AtLeastOnce,
      );
      assert.deepEqual(await arrived, {
        topic: `/demo-aliyun/${deviceName}/user/update`,
        payload: '{"from":"device-sdk"}',
      });
      await connection.disconnect();

      const refused = new mqtt.MqttClient().new_connection(config("0".repeat(64)));
      refused.on("error", () => undefined);
      await assert.rejects(refused.connect(), "a wrong password is refused");
    } finally {
      watch.end(true);
    }
  });
});

describe("npm start: the printed commands for each secret demo product work as printed", { skip }, () => {
  const work = join(PROJECT_ROOT, ".tmp", `secret-demo-${randomBytes(4).toString("hex")}`);
  let stack: SpawnedStack | undefined;

  before(async () => {
    mkdirSync(work, { recursive: true });
    // --coap-port 0: the default UDP 5684 may be taken by another stack on this machine.
    stack = await spawnStack(join(work, ".onramp"), ["--in-memory", "--coap-port", "0"]);
  });
  after(async () => {
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("runs every printed command in order: device connect for each mode, mosquitto_pub with -u/-P", async () => {
    assert.ok(stack);
    const output = stack.output();
    // The shell commands of the printed block: `npx onramp`, `mosquitto_pub` and `eval` lines,
    // each with its continuation lines.
    const start = output.indexOf("Devices born with a secret");
    assert.ok(start >= 0, output);
    const lines = output.slice(start, output.indexOf("Press Ctrl+C to stop.")).split("\n");
    const commands: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      const text = (lines[i] ?? "").trim();
      if (!/^(npx onramp |mosquitto_pub |eval )/.test(text)) continue;
      const parts = [text];
      while ((parts[parts.length - 1] ?? "").endsWith("\\") && i + 1 < lines.length)
        parts.push((lines[++i] ?? "").trim());
      commands.push(parts.join("\n"));
    }
    const kinds = commands.map((c) => c.split(" ").slice(0, 2).join(" "));
    assert.ok(kinds.filter((k) => k === "npx onramp").length >= 4, commands.join("\n\n"));
    assert.ok(kinds.filter((k) => k.startsWith("mosquitto_pub")).length >= 3, commands.join("\n\n"));
    const script = commands.join("\n");
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], { cwd: work });
      let text = "";
      child.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
      });
      child.stderr.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
      });
      child.on("close", (code) => resolve({ code, output: text }));
    });
    assert.equal(result.code, 0, `${result.output}\n--- script:\n${script}\n--- stack:\n${stack.output()}`);
    // Each device connect printed its steps.
    assert.match(result.output, /^register\s+regnwl over MQTT/m);
    assert.match(result.output, /^register\s+register over HTTPS/m);
    assert.match(result.output, /^activate\s+SecureMode 3/m);
    assert.match(result.output, /^message\s+\/demo-aliyun\/lamp-0001\/user\/update \{"on":1\}/m);
  });
});
