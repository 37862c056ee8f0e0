import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import type { IClientOptions, MqttClient } from "mqtt";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import {
  buildAliyunConnwlCredentials,
  buildAliyunRegisterCredentials,
} from "#credentials/aliyun-register.ts";
import { buildAliyunRegisterForm } from "#credentials/aliyun-register-form.ts";
import { ALIYUN_SIGN_METHODS, type AliyunSignMethod } from "#credentials/aliyun-sign-method.ts";
import { buildEnosMqttCredentials, ENOS_SIGN_METHODS, type EnosSignMethod } from "#credentials/enos-mqtt.ts";
import type { MqttCredentials } from "#credentials/mqtt-credentials.ts";
import { isValidTopicFilter, isValidTopicName, topicMatchesFilter } from "#local/mqtt/topic-filter.ts";
import { CliError } from "../cli-error.ts";
import {
  connectMqtt,
  type MqttEndpoint,
  resolveMqttEndpoint,
  tlsClientOptions,
} from "../device/mqtt-endpoint.ts";
import { seconds } from "../number-options.ts";
import { DEFAULT_ENDPOINTS_FILE } from "../wiring.ts";

const DEFAULT_MESSAGE = '{"hello":"onramp"}';

type ConnectOptions = {
  productKey: string;
  deviceName: string;
  deviceSecret?: string;
  productSecret?: string;
  deviceToken?: string;
  clientId?: string;
  from?: string;
  register?: boolean;
  regnwl?: boolean;
  https?: boolean;
  enos?: boolean;
  secureMode?: string;
  signMethod?: string;
  publish?: string;
  message?: string;
  qos: string;
  subscribe?: string;
  wait?: string;
  save?: string;
  host?: string;
  port?: string;
  ca?: string;
  alpn?: string;
  authorizer?: string;
  api?: string;
  endpoints?: string;
  timeout: string;
  json?: boolean;
};

/** What `--save` writes (and `--from` reads): the credential registration or activation issued. */
export type SavedDeviceCredentials = {
  scheme: "aliyun" | "enos";
  productKey: string;
  deviceName: string;
  deviceSecret?: string;
  clientId?: string;
  deviceToken?: string;
  /** How it was obtained: register (MQTT or HTTPS), regnwl, or EnOS activation. */
  obtainedBy: "register" | "regnwl" | "activation";
  obtainedAt: string;
};

/** How the device logs in once it has what it needs. */
type Login =
  | { kind: "aliyun-sign"; deviceSecret: string }
  | { kind: "aliyun-connwl"; clientId: string; deviceToken: string }
  | { kind: "enos"; secureMode: 2 | 3; secret: string };

/** Where the device connects (and, for --https, the API). */
type Endpoint = MqttEndpoint & { apiUrl?: string };

/** One step of the run, printed as one line (or one JSON object under --json). */
type Step = { step: string; text: string; details: Record<string, unknown> };

const EXAMPLES = `
What it does, one printed line per step: registers if asked (Alibaba dynamic registration over
MQTT, as seed 002's device code does, or over HTTPS with --https), saves what registration issued
(--save, mode 0600, never overwrites), connects with the credentials module's CONNECT fields
(Alibaba sign with a timestamp, connwl with the device token, or EnOS SecureMode 2; SecureMode 3
activates first, answers info_reply and reconnects with SecureMode 2), subscribes, publishes,
prints the messages it receives, disconnects. Against the local stack (\`npm start\`) by default;
any endpoint with --host/--port/--ca.

Examples (the demo products \`npm start\` seeds):
  # one secret per device (Alibaba), publish to its own topic and see it come back
  onramp device connect --product-key demo-aliyun --device-name lamp-0001 --device-secret "$SECRET" \\
    --subscribe '/demo-aliyun/lamp-0001/user/#' --publish /demo-aliyun/lamp-0001/user/update --message '{"on":1}'
  # one secret per product: register without pre-registration (regnwl), keep the token, connect (connwl)
  onramp device connect --product-key demo-dynamic --device-name plug-0001 --product-secret "$PRODUCT_SECRET" \\
    --regnwl --save plug-0001.json --publish /demo-dynamic/plug-0001/user/update --message '{"on":1}'
  # later: connect with what was saved
  onramp device connect --product-key demo-dynamic --device-name plug-0001 --from plug-0001.json
  # a pre-registered device gets its secret over HTTPS (POST /auth/register/device)
  onramp device connect --product-key demo-dynamic --device-name plug-pre-01 --product-secret "$PRODUCT_SECRET" \\
    --register --https --save plug-pre-01.json
  # EnOS: SecureMode 3 dynamic activation with the product secret, then SecureMode 2
  onramp device connect --enos --product-key demo-enos --device-name meter-0001 --product-secret "$PRODUCT_SECRET" \\
    --save meter-0001.json --publish /sys/demo-enos/meter-0001/thing/measurepoint/post --message '{}'
  # AWS IoT Core through the custom authorizer's domain (ALPN mqtt on 443)
  onramp device connect ... --host iot.example.com --port 443 --alpn mqtt`;

/** `onramp device connect`: what a device born with a secret does, step by step. */
export function registerDeviceConnectCommand(device: Command): void {
  device
    .command("connect")
    .description(
      "Connect like a device born with a secret (Alibaba sign, dynamic registration, EnOS): register if asked, save, connect, subscribe, publish",
    )
    .requiredOption("--product-key <key>", "the device's product key")
    .requiredOption("--device-name <name>", "the device name (Alibaba) or device key (EnOS)")
    .option("--device-secret <secret>", "the device's own secret (or env ONRAMP_DEVICE_SECRET)")
    .option(
      "--product-secret <secret>",
      "the product secret (or env ONRAMP_PRODUCT_SECRET): with --register/--regnwl, or --enos (SecureMode 3)",
    )
    .option("--device-token <token>", "connwl: the token regnwl issued (with --client-id)")
    .option(
      "--client-id <id>",
      "the client id before the '|' block (default {productKey}.{deviceName}; EnOS: the device key)",
    )
    .option("--from <file>", "log in with what --save wrote earlier")
    .option("--register", "Alibaba dynamic registration of a pre-registered device: get its device secret")
    .option(
      "--regnwl",
      "Alibaba dynamic registration without pre-registration: get a client id and device token",
    )
    .option("--https", "with --register: register over HTTPS (POST /auth/register/device) instead of MQTT")
    .option("--enos", "EnOS login (username deviceKey&productKey, plain-hash sign)")
    .option(
      "--secure-mode <mode>",
      "with --enos: 2 (device secret) or 3 (product secret: dynamic activation)",
    )
    .option(
      "--sign-method <method>",
      `Alibaba: ${ALIYUN_SIGN_METHODS.join(" | ")} (default hmacsha256); EnOS: ${ENOS_SIGN_METHODS.join(" | ")} (default sha256)`,
    )
    .option("--subscribe <filter>", "subscribe to this topic filter and print what arrives")
    .option("--publish <topic>", "publish --message to this topic")
    .option("--message <json>", `the JSON payload to publish (default ${DEFAULT_MESSAGE})`)
    .option("--qos <qos>", "QoS of the subscription and the publish: 0 or 1", "1")
    .option(
      "--wait <seconds>",
      "after subscribing, print messages for this long (default 2; ends early when the own publish comes back)",
    )
    .option(
      "--save <file>",
      "save the secret or token registration/activation issued (mode 0600; never overwrites)",
    )
    .option("--host <host>", "MQTT endpoint host (default: the local stack's)")
    .option("--port <port>", "MQTT endpoint port (default: the local stack's, or 8883 with --host)")
    .option(
      "--ca <file>",
      "CA certificate (PEM) the endpoint's certificate must chain to (default: the local stack's root CA)",
    )
    .option("--alpn <protocol>", "TLS ALPN protocol (AWS IoT custom authentication on port 443: mqtt)")
    .option("--authorizer <name>", "append ?x-amz-customauthorizer-name=NAME to the username")
    .option("--api <url>", "with --https: the API base URL (default: the local stack's)")
    .option(
      "--endpoints <file>",
      "local stack endpoints file written by `npm start`",
      process.env.ONRAMP_ENDPOINTS ?? DEFAULT_ENDPOINTS_FILE,
    )
    .option("--timeout <seconds>", "give up on a connection, registration or answer after this long", "10")
    .option("--json", 'print one JSON object per step (errors as {"error": {code, message}})')
    .addHelpText("after", EXAMPLES)
    .action(async (options: ConnectOptions) => {
      await deviceConnect(options);
    });
}

async function deviceConnect(options: ConnectOptions): Promise<void> {
  const plan = checkOptions(options);
  const timeoutMs = seconds(options.timeout, "--timeout", 0.1, 300) * 1000;
  const waitMs = options.wait === undefined ? 2000 : seconds(options.wait, "--wait", 0, 300) * 1000;
  const qos = options.qos === "0" ? 0 : options.qos === "1" ? 1 : undefined;
  if (qos === undefined) throw new CliError("--qos must be 0 or 1");
  if (options.save && existsSync(options.save)) {
    // Before anything is sent: registration is once per device; its answer must not be lost.
    throw new CliError(
      `${options.save} exists already; refusing to overwrite it (choose another --save, or move the old file away).`,
      1,
      "FILE_EXISTS",
    );
  }
  const endpoint = await resolveEndpoint(options, plan.https);
  const print = (step: Step) => {
    if (options.json) process.stdout.write(`${JSON.stringify({ step: step.step, ...step.details })}\n`);
    else process.stdout.write(`${step.step.padEnd(10)} ${step.text}\n`);
  };
  const { productKey, deviceName } = options;
  const clientIdBase = options.clientId;
  const common = { endpoint, timeoutMs, authorizer: options.authorizer };

  let login = plan.login;
  if (plan.register) {
    const { authType } = plan.register;
    const productSecret = plan.register.productSecret;
    type Issued = { deviceSecret?: string; clientId?: string; deviceToken?: string };
    const result: Issued = plan.https
      ? await registerOverHttps(endpoint, { productKey, deviceName, productSecret }, timeoutMs)
      : await registerOverMqtt(
          common,
          buildAliyunRegisterCredentials({
            authType,
            productKey,
            deviceName,
            productSecret,
            random: randomBytes(8).toString("hex"),
            ...(clientIdBase ? { clientId: clientIdBase } : {}),
            ...(plan.signMethod ? { signMethod: plan.signMethod as AliyunSignMethod } : {}),
          }),
          authType,
        );
    const saved: SavedDeviceCredentials = {
      scheme: "aliyun",
      productKey,
      deviceName,
      ...(result.deviceSecret ? { deviceSecret: result.deviceSecret } : {}),
      ...(result.clientId ? { clientId: result.clientId } : {}),
      ...(result.deviceToken ? { deviceToken: result.deviceToken } : {}),
      obtainedBy: authType,
      obtainedAt: new Date().toISOString(),
    };
    const what =
      authType === "register" ? "a device secret" : `client id ${result.clientId} and a device token`;
    print({
      step: "register",
      text: `${authType} over ${plan.https ? "HTTPS" : "MQTT"}: got ${what}${savedText(options.save, saved)}`,
      details: { authType, via: plan.https ? "https" : "mqtt", ...shownCredentials(options.save, saved) },
    });
    save(options.save, saved);
    login =
      authType === "register"
        ? { kind: "aliyun-sign", deviceSecret: result.deviceSecret ?? "" }
        : { kind: "aliyun-connwl", clientId: result.clientId ?? "", deviceToken: result.deviceToken ?? "" };
  }

  if (login.kind === "enos" && login.secureMode === 3) {
    const credentials = enosCredentials(options, login);
    const deviceSecret = await activateOverMqtt(common, credentials, productKey, deviceName);
    const saved: SavedDeviceCredentials = {
      scheme: "enos",
      productKey,
      deviceName,
      deviceSecret,
      obtainedBy: "activation",
      obtainedAt: new Date().toISOString(),
    };
    print({
      step: "activate",
      text: `SecureMode 3 with the product secret: thing.activate.info gave a device secret, info_reply sent${savedText(options.save, saved)}`,
      details: { secureMode: 3, ...shownCredentials(options.save, saved) },
    });
    save(options.save, saved);
    login = { kind: "enos", secureMode: 2, secret: deviceSecret };
  }

  const credentials =
    login.kind === "aliyun-sign"
      ? buildAliyunMqttCredentials({
          productKey,
          deviceName,
          deviceSecret: login.deviceSecret,
          timestamp: Date.now(),
          ...(clientIdBase ? { clientId: clientIdBase } : {}),
          ...(plan.signMethod ? { signMethod: plan.signMethod as AliyunSignMethod } : {}),
        })
      : login.kind === "aliyun-connwl"
        ? buildAliyunConnwlCredentials({
            productKey,
            deviceName,
            clientId: login.clientId,
            deviceToken: login.deviceToken,
          })
        : enosCredentials(options, login);
  const scheme =
    login.kind === "aliyun-sign"
      ? "Alibaba sign"
      : login.kind === "aliyun-connwl"
        ? "connwl"
        : "EnOS SecureMode 2";
  const client = await connect(common, credentials);
  if (!client) {
    throw new CliError(
      `${endpoint.url} refused the connection (${scheme}): wrong secret or token, stale timestamp, unknown, disabled or revoked device, or not registered yet (the stack's log says which).`,
      1,
      "CONNECT_REFUSED",
    );
  }
  print({
    step: "connect",
    text: `${endpoint.url} as ${credentials.clientId} (${scheme}): accepted`,
    details: {
      url: endpoint.url,
      clientId: credentials.clientId,
      username: credentials.username,
      scheme,
      accepted: true,
    },
  });
  try {
    const messages: Array<{ topic: string; payload: string }> = [];
    let echoed: (() => void) | undefined;
    client.on("message", (topic, payload) => {
      const message = { topic, payload: payload.toString("utf8") };
      messages.push(message);
      print({
        step: "message",
        text: `${topic} ${message.payload}`,
        details: message,
      });
      if (options.publish && topic === options.publish) echoed?.();
    });
    if (options.subscribe) {
      const granted = await subscribe(client, options.subscribe, qos, timeoutMs);
      if (granted === undefined) {
        throw new CliError(
          `subscribing to ${options.subscribe} was refused: the device's policy allows only its own topics.`,
          1,
          "SUBSCRIBE_REFUSED",
        );
      }
      print({
        step: "subscribe",
        text: `${options.subscribe}: granted QoS ${granted}`,
        details: { filter: options.subscribe, grantedQos: granted },
      });
    }
    if (options.publish) {
      await publish(client, options.publish, options.message ?? DEFAULT_MESSAGE, qos, timeoutMs);
      print({
        step: "publish",
        text: `${options.publish} (QoS ${qos}): ${qos === 1 ? "acknowledged" : "sent"}`,
        details: { topic: options.publish, qos, acknowledged: qos === 1 },
      });
    }
    if (options.subscribe && waitMs > 0) {
      const expectEcho =
        options.publish !== undefined && topicMatchesFilter(options.subscribe, options.publish);
      await new Promise<void>((resolveWait) => {
        const timer = setTimeout(resolveWait, waitMs);
        if (expectEcho) {
          echoed = () => {
            clearTimeout(timer);
            resolveWait();
          };
          if (messages.some((m) => m.topic === options.publish)) echoed();
        }
      });
    }
  } finally {
    await new Promise<void>((resolveEnd) => client.end(false, {}, () => resolveEnd()));
  }
  print({ step: "disconnect", text: "done", details: {} });
}

/** The options' combination checked, and what the device will do. */
function checkOptions(options: ConnectOptions): {
  login: Login;
  register?: { authType: "register" | "regnwl"; productSecret: string };
  https: boolean;
  signMethod?: string;
} {
  const fromFile = options.from ? readSaved(options.from, options) : undefined;
  const deviceSecret =
    options.deviceSecret ?? fromFile?.deviceSecret ?? envUnlessOther(options, "ONRAMP_DEVICE_SECRET");
  const productSecret = options.productSecret ?? envUnlessOther(options, "ONRAMP_PRODUCT_SECRET");
  const deviceToken = options.deviceToken ?? fromFile?.deviceToken;
  const given = [deviceSecret, productSecret, deviceToken].filter((v) => v !== undefined).length;
  if (given === 0) {
    throw new CliError(
      "a credential is required: --device-secret, --product-secret (with --register, --regnwl or --enos), --device-token with --client-id, or --from FILE",
    );
  }
  if (given > 1) {
    throw new CliError("give one credential: --device-secret, --product-secret, --device-token or --from");
  }
  const enos = options.enos === true || fromFile?.scheme === "enos";
  const https = options.https === true;
  if (options.register && options.regnwl) throw new CliError("--register and --regnwl exclude each other");
  const authType = options.register ? "register" : options.regnwl ? "regnwl" : undefined;
  if (https && authType !== "register") {
    throw new CliError(
      "--https registers a pre-registered device: use it with --register (regnwl is MQTT only, as on Alibaba)",
    );
  }
  if (options.message !== undefined && options.publish === undefined) {
    throw new CliError("--message needs --publish TOPIC");
  }
  if (options.publish !== undefined) {
    if (!isValidTopicName(options.publish))
      throw new CliError("--publish must be a topic name without wildcards");
    try {
      JSON.parse(options.message ?? DEFAULT_MESSAGE);
    } catch {
      throw new CliError("--message must be JSON (e.g. '{\"on\":1}')");
    }
  }
  if (options.subscribe !== undefined && !isValidTopicFilter(options.subscribe)) {
    throw new CliError("--subscribe must be a topic filter (+ and # only as whole levels, # last)");
  }
  if (options.signMethod !== undefined) {
    const allowed: readonly string[] = enos ? ENOS_SIGN_METHODS : ALIYUN_SIGN_METHODS;
    if (!allowed.includes(options.signMethod)) {
      throw new CliError(
        `--sign-method must be one of ${allowed.join(", ")}${enos ? " (EnOS)" : " (Alibaba)"}`,
      );
    }
  }
  const signMethod = options.signMethod ? { signMethod: options.signMethod } : {};

  if (enos) {
    if (authType || https)
      throw new CliError(
        "--register, --regnwl and --https are Alibaba's; EnOS activates with --secure-mode 3",
      );
    if (deviceToken) throw new CliError("--device-token is Alibaba's connwl; EnOS logs in with a secret");
    const mode = options.secureMode ?? (productSecret ? "3" : "2");
    if (mode !== "2" && mode !== "3") throw new CliError("--secure-mode must be 2 or 3");
    if (mode === "3" && !productSecret)
      throw new CliError("--secure-mode 3 signs with the product secret: pass --product-secret");
    if (mode === "2" && !deviceSecret)
      throw new CliError("--secure-mode 2 signs with the device secret: pass --device-secret");
    if (mode === "2" && options.save)
      throw new CliError("--save keeps what activation issues: it needs --secure-mode 3");
    return {
      login: {
        kind: "enos",
        secureMode: mode === "3" ? 3 : 2,
        secret: (mode === "3" ? productSecret : deviceSecret) ?? "",
      },
      https: false,
      ...signMethod,
    };
  }
  if (options.secureMode !== undefined) throw new CliError("--secure-mode is for --enos");
  if (authType) {
    if (!productSecret)
      throw new CliError(`--${authType} signs with the product secret: pass --product-secret`);
    return {
      login: { kind: "aliyun-sign", deviceSecret: "" },
      register: { authType, productSecret },
      https,
      ...signMethod,
    };
  }
  if (options.save)
    throw new CliError(
      "--save keeps what registration issues: it needs --register or --regnwl (or --enos with --product-secret)",
    );
  if (productSecret) {
    throw new CliError(
      "a product secret alone does not log in: add --register or --regnwl (aliyun-dynamic products), or --enos (SecureMode 3 activation)",
    );
  }
  if (deviceToken) {
    const clientId = options.clientId ?? fromFile?.clientId;
    if (!clientId) throw new CliError("--device-token needs --client-id (both came in the regnwl answer)");
    return { login: { kind: "aliyun-connwl", clientId, deviceToken }, https: false };
  }
  return { login: { kind: "aliyun-sign", deviceSecret: deviceSecret ?? "" }, https: false, ...signMethod };
}

/** An environment variable, unless another credential option was given (it would count twice). */
function envUnlessOther(options: ConnectOptions, name: string): string | undefined {
  if (options.deviceSecret || options.productSecret || options.deviceToken || options.from) return undefined;
  const value = process.env[name];
  return value === "" ? undefined : value;
}

function readSaved(file: string, options: ConnectOptions): SavedDeviceCredentials {
  let saved: SavedDeviceCredentials;
  try {
    saved = JSON.parse(readFileSync(file, "utf8")) as SavedDeviceCredentials;
  } catch (error) {
    throw new CliError(`--from ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (saved.productKey !== options.productKey || saved.deviceName !== options.deviceName) {
    throw new CliError(
      `--from ${file} holds ${saved.deviceName} of ${saved.productKey}, not ${options.deviceName} of ${options.productKey}`,
    );
  }
  if (!saved.deviceSecret && !(saved.deviceToken && saved.clientId)) {
    throw new CliError(`--from ${file} holds neither a deviceSecret nor a clientId and deviceToken`);
  }
  return saved;
}

/** Where to connect: --host/--port/--ca, or the local stack's endpoints file (and its API). */
async function resolveEndpoint(options: ConnectOptions, needsApi: boolean): Promise<Endpoint> {
  const { stackApi, ...endpoint } = await resolveMqttEndpoint(options, readCa);
  if (options.host && needsApi && !options.api) throw new CliError("--https with --host needs --api URL");
  const apiUrl = options.api ?? stackApi;
  return { ...endpoint, ...(apiUrl ? { apiUrl } : {}) };
}

function readCa(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new CliError(
      `cannot read the CA file ${file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

type Common = { endpoint: Endpoint; timeoutMs: number; authorizer: string | undefined };

function clientOptions(common: Common, credentials: MqttCredentials): IClientOptions {
  return {
    clientId: credentials.clientId,
    username: common.authorizer
      ? `${credentials.username}?x-amz-customauthorizer-name=${encodeURIComponent(common.authorizer)}`
      : credentials.username,
    password: credentials.password,
    ...tlsClientOptions(common.endpoint, common.timeoutMs),
  };
}

/**
 * One connection attempt; resolves the connected client, or undefined when the endpoint refused.
 * `onMessage` is attached before the CONNECT goes out (see connectMqtt).
 */
function connect(
  common: Common,
  credentials: MqttCredentials,
  onMessage?: (topic: string, payload: Buffer) => void,
): Promise<MqttClient | undefined> {
  return connectMqtt(common.endpoint.url, clientOptions(common, credentials), onMessage);
}

/** Waits for the first message on `topic`, or until the connection closes or the time is up. */
function awaitPush(
  common: Common,
  credentials: MqttCredentials,
  topic: string,
): Promise<{ client?: MqttClient; payload?: string; refused: boolean }> {
  return new Promise((resolvePush, reject) => {
    let client: MqttClient | undefined;
    let payload: string | undefined;
    let settled = false;
    const settle = (value: { client?: MqttClient; payload?: string; refused: boolean }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolvePush(value);
    };
    const timer = setTimeout(() => {
      settle({ ...(client ? { client } : {}), refused: false });
    }, common.timeoutMs);
    connect(common, credentials, (received, body) => {
      if (received === topic) {
        payload = body.toString("utf8");
        settle({ ...(client ? { client } : {}), payload, refused: false });
      }
    })
      .then((connected) => {
        client = connected;
        if (!connected) return settle({ refused: true });
        if (payload !== undefined) settle({ client: connected, payload, refused: false });
        connected.once("close", () => settle({ client: connected, refused: false }));
      })
      .catch(reject);
  });
}

/** Alibaba MQTT dynamic registration: the platform pushes the answer on /ext/register|regnwl and disconnects. */
async function registerOverMqtt(
  common: Common,
  credentials: MqttCredentials,
  authType: "register" | "regnwl",
): Promise<{ deviceSecret?: string; clientId?: string; deviceToken?: string }> {
  const topic = `/ext/${authType}`;
  const { client, payload, refused } = await awaitPush(common, credentials, topic);
  client?.end(true);
  if (refused) {
    throw new CliError(
      `${common.endpoint.url} refused the ${authType} request: wrong product secret, unknown device${authType === "regnwl" ? ", regnwl not allowed for this product" : ""}, or already registered and logged in (an operator resets it: onramp registry reset).`,
      1,
      "REGISTRATION_REFUSED",
    );
  }
  if (payload === undefined) {
    throw new CliError(`no answer on ${topic} within the timeout`, 1, "REGISTRATION_TIMEOUT");
  }
  const answer = parseJson(payload, topic) as {
    deviceSecret?: unknown;
    clientId?: unknown;
    deviceToken?: unknown;
  };
  if (authType === "register" && typeof answer.deviceSecret === "string")
    return { deviceSecret: answer.deviceSecret };
  if (
    authType === "regnwl" &&
    typeof answer.clientId === "string" &&
    typeof answer.deviceToken === "string"
  ) {
    return { clientId: answer.clientId, deviceToken: answer.deviceToken };
  }
  throw new CliError(`unexpected answer on ${topic}: ${payload.slice(0, 200)}`, 1, "REGISTRATION_FAILED");
}

/** Alibaba HTTPS dynamic registration (pre-registered devices): POST /auth/register/device. */
async function registerOverHttps(
  endpoint: Endpoint,
  input: { productKey: string; deviceName: string; productSecret: string },
  timeoutMs: number,
): Promise<{ deviceSecret: string }> {
  if (!endpoint.apiUrl) throw new CliError("--https needs the API URL: pass --api");
  const request = buildAliyunRegisterForm({ ...input, random: randomBytes(8).toString("hex") });
  const url = new URL(request.path, endpoint.apiUrl);
  let status: number;
  let text: string;
  try {
    const response = await fetch(url, {
      method: request.method,
      headers: { "content-type": request.contentType },
      body: request.body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = response.status;
    text = await response.text();
  } catch (error) {
    throw new CliError(
      `cannot reach ${url.href}: ${error instanceof Error ? error.message : String(error)}`,
      1,
      "UNREACHABLE",
    );
  }
  const body = parseJson(text, url.href) as {
    code?: number;
    errorCode?: string;
    message?: string;
    data?: { deviceSecret?: unknown };
  };
  if (status === 200 && body.code === 200 && typeof body.data?.deviceSecret === "string") {
    return { deviceSecret: body.data.deviceSecret };
  }
  throw new CliError(
    `registration refused: HTTP ${status} ${body.errorCode ?? ""}: ${body.message ?? text.slice(0, 200)}`,
    1,
    "REGISTRATION_REFUSED",
  );
}

/** EnOS SecureMode 3: the device secret arrives in thing.activate.info; the device answers info_reply. */
async function activateOverMqtt(
  common: Common,
  credentials: MqttCredentials,
  productKey: string,
  deviceKey: string,
): Promise<string> {
  const topic = `/ext/session/${productKey}/${deviceKey}/thing/activate/info`;
  const { client, payload, refused } = await awaitPush(common, credentials, topic);
  try {
    if (refused || !client) {
      throw new CliError(
        `${common.endpoint.url} refused the SecureMode 3 login: wrong product secret, unknown device, or dynamic activation is off for this product.`,
        1,
        "ACTIVATION_REFUSED",
      );
    }
    if (payload === undefined)
      throw new CliError(`no thing.activate.info on ${topic} within the timeout`, 1, "ACTIVATION_TIMEOUT");
    const info = parseJson(payload, topic) as { id?: unknown; params?: { deviceSecret?: unknown } };
    const deviceSecret = info.params?.deviceSecret;
    if (typeof deviceSecret !== "string") {
      throw new CliError(`unexpected answer on ${topic}: no params.deviceSecret`, 1, "ACTIVATION_FAILED");
    }
    const reply = JSON.stringify({ id: String(info.id ?? "1"), code: 200, data: {} });
    await publish(client, `${topic}_reply`, reply, 0, common.timeoutMs).catch(() => undefined);
    return deviceSecret;
  } finally {
    await new Promise<void>((resolveEnd) =>
      client ? client.end(false, {}, () => resolveEnd()) : resolveEnd(),
    );
  }
}

function enosCredentials(
  options: ConnectOptions,
  login: { secureMode: 2 | 3; secret: string },
): MqttCredentials {
  return buildEnosMqttCredentials({
    productKey: options.productKey,
    deviceKey: options.deviceName,
    secret: login.secret,
    secureMode: login.secureMode,
    timestamp: Date.now(),
    ...(options.clientId ? { clientId: options.clientId } : {}),
    ...(options.signMethod ? { signMethod: options.signMethod as EnosSignMethod } : {}),
  });
}

/** Subscribes; resolves the granted QoS, or undefined when the SUBACK refused (0x80). */
function subscribe(
  client: MqttClient,
  filter: string,
  qos: 0 | 1,
  timeoutMs: number,
): Promise<number | undefined> {
  return withClose(
    client,
    timeoutMs,
    `subscribing to ${filter}`,
    new Promise((resolveSub, reject) =>
      client.subscribe(filter, { qos }, (error, granted) => {
        const suback = (error as (Error & { packet?: { granted?: unknown[] } }) | null)?.packet;
        if (error && Array.isArray(suback?.granted)) return resolveSub(undefined);
        if (error)
          return reject(
            client.connected
              ? new CliError(`subscribing to ${filter} failed: ${error.message}`, 1, "SUBSCRIBE_FAILED")
              : disconnected(`subscribing to ${filter}`),
          );
        const result = granted?.[0]?.qos;
        resolveSub(result === undefined || result === 128 ? undefined : result);
      }),
    ),
  );
}

/** Publishes; with QoS 1 resolves on PUBACK. The endpoint disconnects a device publishing where its policy forbids. */
function publish(
  client: MqttClient,
  topic: string,
  message: string,
  qos: 0 | 1,
  timeoutMs: number,
): Promise<void> {
  return withClose(
    client,
    timeoutMs,
    `publishing to ${topic}`,
    new Promise((resolvePub, reject) =>
      client.publish(topic, message, { qos }, (error) =>
        error
          ? reject(
              client.connected
                ? new CliError(`publishing to ${topic} failed: ${error.message}`, 1, "PUBLISH_FAILED")
                : disconnected(`publishing to ${topic}`),
            )
          : resolvePub(),
      ),
    ),
  );
}

/** `work`, unless the connection closes first (the endpoint's answer to a forbidden action) or time runs out. */
function withClose<T>(client: MqttClient, timeoutMs: number, what: string, work: Promise<T>): Promise<T> {
  let onClose: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<never>((_, reject) => {
    onClose = () => reject(disconnected(what));
    client.once("close", onClose);
    timer = setTimeout(
      () => reject(new CliError(`no answer while ${what} within the timeout`, 1, "TIMEOUT")),
      timeoutMs,
    );
  });
  return Promise.race([work, closed]).finally(() => {
    if (onClose) client.off("close", onClose);
    clearTimeout(timer);
  });
}

/** The endpoint closed the connection: AWS IoT's answer to a publish or subscribe the policy denies. */
function disconnected(what: string): CliError {
  return new CliError(
    `the endpoint closed the connection while ${what}: the device's policy does not allow it (its own topics only)`,
    1,
    "DISCONNECTED",
  );
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CliError(
      `${where} answered something that is not JSON: ${text.slice(0, 200)}`,
      1,
      "BAD_ANSWER",
    );
  }
}

/** " (saved to FILE, 0600)" or, without --save, the note that the credential is printed once. */
function savedText(file: string | undefined, saved: SavedDeviceCredentials): string {
  if (file) return ` (saved to ${file}, mode 0600)`;
  const credential = saved.deviceSecret ?? saved.deviceToken ?? "";
  return `: ${credential} (not saved: keep it; registration is once per device)`;
}

function shownCredentials(file: string | undefined, saved: SavedDeviceCredentials): Record<string, unknown> {
  if (file) return { savedTo: file };
  return {
    ...(saved.deviceSecret ? { deviceSecret: saved.deviceSecret } : {}),
    ...(saved.clientId ? { clientId: saved.clientId } : {}),
    ...(saved.deviceToken ? { deviceToken: saved.deviceToken } : {}),
  };
}

/** Writes the issued credential, 0600, failing if the file appeared meanwhile (flag wx). */
function save(file: string | undefined, saved: SavedDeviceCredentials): void {
  if (!file) return;
  try {
    writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    throw new CliError(
      `could not save to ${file}: ${error instanceof Error ? error.message : String(error)}`,
      1,
      "FILE_EXISTS",
    );
  }
}
