import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import type { MqttClient } from "mqtt";
import { CliError } from "../cli-error.ts";
import { seconds, whole } from "../number-options.ts";
import {
  BindDevice,
  type DeviceEvent,
  LanPortError,
  SubscribeRefusedError,
} from "../simulators/bind-device.ts";
import {
  AWSS_COAP_PORT,
  type BindingIdentity,
  isBindingToken,
  NOTIFY_COUNT,
  NOTIFY_STEP_MS,
  parseHostPort,
  REPLY_TIMEOUT_MS,
  REPORT_TRIES,
  TOKEN_LIFETIME_MS,
} from "../simulators/bind-protocol.ts";
import {
  connectDeviceMqtt,
  type DeviceLogin,
  readFileOrFail,
  resolveMqttEndpoint,
} from "../simulators/device-mqtt.ts";
import { DEFAULT_ENDPOINTS_FILE } from "../wiring.ts";

export type SimulateOptions = {
  bind?: boolean;
  reset?: boolean;
  productKey: string;
  deviceName: string;
  cert?: string;
  key?: string;
  dir?: string;
  deviceSecret?: string;
  from?: string;
  phoneToken?: string;
  lanPort?: string;
  lanHost?: string;
  notifyTo?: string[];
  multicast?: boolean;
  ip?: string;
  mac?: string;
  replyTimeout?: string;
  tries?: string;
  notifyCount?: string;
  notifyStep?: string;
  tokenLifetime?: string;
  duration?: string;
  showTokens?: boolean;
  host?: string;
  port?: string;
  ca?: string;
  alpn?: string;
  endpoints?: string;
  timeout?: string;
  json?: boolean;
};

const EXAMPLES = `
What it does (Alibaba Linkkit's binding, seeds 001/003): connects over MQTT, subscribes to
match_reply, serves CoAP on the LAN (/sys/device/info/get), reports a one-time token
(thing.awss.enrollee.match; no reply in 30 s: again, 2 tries), and once the cloud answered
sends device.info.notify 30 times to the AWSS multicast group ${"224.0.1.187"}:5683 and to each
--notify-to. A phone's GET is answered only with a token the cloud acknowledged and that has not
expired (45 s); then a fresh token is reported. One line per step, with the SDK's log keywords
(report token, awss_report_token_reply, device.info.notify, Request path is, sending message
to app). Ctrl-C stops. Tokens are shown masked unless --show-tokens.

Examples (with \`npm start\` running):
  # a certificate device (files from \`onramp device vend --out\`): thing name = serial
  onramp device simulate --bind --product-key demo-product --device-name DEMO-0001 --dir ./device-DEMO-0001 \\
    --notify-to 127.0.0.1:5686
  # a device born with a secret (Alibaba sign)
  onramp device simulate --bind --product-key demo-aliyun --device-name lamp-0001 --device-secret "$SECRET"
  # path 3: the token the phone gave during Wi-Fi provisioning (onramp phone token prints one)
  onramp device simulate --bind --product-key demo-aliyun --device-name lamp-0001 --device-secret "$SECRET" \\
    --phone-token 6CFD937AE0AFF0C7B1044A9AA3B5EF2E
  # factory reset: the cloud removes the device's bindings
  onramp device simulate --reset --product-key demo-aliyun --device-name lamp-0001 --device-secret "$SECRET"`;

/** `onramp device simulate --bind | --reset` */
export function registerDeviceSimulateCommand(device: Command): void {
  device
    .command("simulate")
    .description(
      "Simulate a Wi-Fi device binding to a phone user: report tokens over MQTT, serve CoAP on the LAN (--bind), or reset (--reset)",
    )
    .option("--bind", "report binding tokens and serve the LAN side until Ctrl-C")
    .option(
      "--reset",
      "publish thing.reset (the cloud removes the device's bindings); with --bind, bind after it",
    )
    .requiredOption("--product-key <key>", "the device's product key")
    .requiredOption("--device-name <name>", "the device name (a certificate device's serial = thing name)")
    .option("--dir <dir>", "certificate device: the folder `device vend --out` or `device issue` wrote")
    .option("--cert <file>", "certificate device: its certificate (PEM; may carry the CA chain after it)")
    .option("--key <file>", "certificate device: its private key (PEM)")
    .option(
      "--device-secret <secret>",
      "device born with a secret: its device secret (or env ONRAMP_DEVICE_SECRET)",
    )
    .option("--from <file>", "device born with a secret: what `device connect --save` wrote")
    .option("--phone-token <hex>", "path 3: report this token (32 hex characters) made by the phone")
    .option(
      "--lan-port <port>",
      `UDP port of the device's CoAP server (0: any free port)`,
      String(AWSS_COAP_PORT),
    )
    .option("--lan-host <address>", "address the CoAP server binds to", "0.0.0.0")
    .option(
      "--notify-to <host:port>",
      "also send device.info.notify to this unicast address (repeatable)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option("--no-multicast", "neither join the AWSS multicast group nor notify to it")
    .option("--ip <address>", "the IP address the LAN payloads carry (default: this host's)")
    .option("--mac <mac>", "the MAC address the LAN payloads carry (default: this host's)")
    .option(
      "--reply-timeout <seconds>",
      "wait this long for match_reply before reporting again",
      String(REPLY_TIMEOUT_MS / 1000),
    )
    .option("--tries <n>", "reports of one token without a reply before giving up", String(REPORT_TRIES))
    .option("--notify-count <n>", "device.info.notify sends after the cloud answered", String(NOTIFY_COUNT))
    .option(
      "--notify-step <ms>",
      "the pause between notifies grows by this much per send",
      String(NOTIFY_STEP_MS),
    )
    .option(
      "--token-lifetime <seconds>",
      "how long the device answers with a reported token",
      String(TOKEN_LIFETIME_MS / 1000),
    )
    .option("--duration <seconds>", "stop after this long (default: run until Ctrl-C)")
    .option("--show-tokens", "print tokens in full (as the SDK's debug log does); masked by default")
    .option("--host <host>", "MQTT endpoint host (default: the local stack's)")
    .option("--port <port>", "MQTT endpoint port")
    .option("--ca <file>", "CA certificate (PEM) of the endpoint (default: the local stack's root CA)")
    .option("--alpn <protocol>", "TLS ALPN protocol (e.g. x-amzn-mqtt-ca for port 443)")
    .option(
      "--endpoints <file>",
      "local stack endpoints file written by `npm start`",
      process.env.ONRAMP_ENDPOINTS ?? DEFAULT_ENDPOINTS_FILE,
    )
    .option("--timeout <seconds>", "give up connecting after this long", "10")
    .option("--json", 'print one JSON object per step (errors as {"error": {code, message}})')
    .addHelpText("after", EXAMPLES)
    .action(async (options: SimulateOptions) => {
      await runDeviceSimulation(options);
    });
}

/** A simulated device, started: its binding logic, the LAN port it serves, and how to stop it. */
export type SimulatedDevice = {
  device: BindDevice;
  lanPort: number;
  stop(): Promise<void>;
};

/** Checks the options, connects and starts the device's LAN side (binding begins with `device.beginBinding()`). */
export async function startDeviceSimulation(
  options: SimulateOptions,
  log: (event: DeviceEvent) => void,
  testing: { now?: () => number } = {},
): Promise<SimulatedDevice> {
  if (!options.bind && !options.reset)
    throw new CliError("say what the device does: --bind, --reset, or both");
  const login = deviceLogin(options);
  const identity: BindingIdentity =
    login.kind === "certificate"
      ? { kind: "thing", productKey: options.productKey, thingName: options.deviceName }
      : { kind: "aliyun", productKey: options.productKey, deviceName: options.deviceName };
  if (options.phoneToken !== undefined) {
    if (!options.bind) throw new CliError("--phone-token is reported when binding: add --bind");
    if (!isBindingToken(options.phoneToken.toUpperCase())) {
      throw new CliError(
        "--phone-token must be 32 hexadecimal characters (16 bytes), as `onramp phone token` prints",
      );
    }
  }
  const notifyTo = (options.notifyTo ?? []).map((value) => {
    try {
      return parseHostPort(value, "--notify-to");
    } catch (error) {
      throw new CliError((error as Error).message);
    }
  });
  const lanPort = whole(options.lanPort ?? String(AWSS_COAP_PORT), "--lan-port", 0, 65535);
  const settings = {
    replyTimeoutMs: seconds(options.replyTimeout ?? "30", "--reply-timeout", 0.01, 3600) * 1000,
    tries: whole(options.tries ?? String(REPORT_TRIES), "--tries", 1, 100),
    notifyCount: whole(options.notifyCount ?? String(NOTIFY_COUNT), "--notify-count", 0, 1000),
    notifyStepMs: whole(options.notifyStep ?? String(NOTIFY_STEP_MS), "--notify-step", 0, 60_000),
    tokenLifetimeMs: seconds(options.tokenLifetime ?? "45", "--token-lifetime", 1, 86_400) * 1000,
  };
  const timeoutMs = seconds(options.timeout ?? "10", "--timeout", 0.1, 300) * 1000;
  const endpoint = await resolveMqttEndpoint(options);
  const client = await connectDeviceMqtt(endpoint, login, timeoutMs);
  log({
    event: "connect",
    text: `iotx_mc_connect: mqtt connect success! (${endpoint.url} as ${login.kind === "certificate" ? login.thingName : `${options.productKey}.${options.deviceName}`})`,
    details: { url: endpoint.url, login: login.kind },
  });
  const device = new BindDevice({
    client,
    identity,
    lan: {
      port: lanPort,
      host: options.lanHost ?? "0.0.0.0",
      multicast: options.multicast !== false,
      notifyTo,
      ...(options.ip ? { ip: options.ip } : {}),
      ...(options.mac ? { mac: options.mac } : {}),
    },
    serveLan: options.bind === true,
    ...(options.phoneToken ? { phoneToken: options.phoneToken.toUpperCase() } : {}),
    ...settings,
    showTokens: options.showTokens === true,
    ...(testing.now ? { now: testing.now } : {}),
    log,
  });
  const stop = async () => {
    await device.stop();
    await new Promise<void>((resolveEnd) => client.end(false, {}, () => resolveEnd()));
  };
  try {
    await device.start();
  } catch (error) {
    await stop();
    if (error instanceof SubscribeRefusedError || error instanceof LanPortError) {
      throw new CliError(
        error.message,
        1,
        error instanceof LanPortError ? "LAN_PORT_UNAVAILABLE" : "SUBSCRIBE_REFUSED",
      );
    }
    throw disconnectedOr(client, error);
  }
  return { device, lanPort: device.lanPort, stop };
}

async function runDeviceSimulation(options: SimulateOptions): Promise<void> {
  const print = (event: DeviceEvent) => {
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ event: event.event, text: event.text, ...event.details })}\n`);
    } else {
      process.stdout.write(`[${new Date().toISOString().slice(11, 23)}] ${event.text}\n`);
    }
  };
  const durationMs =
    options.duration === undefined ? undefined : seconds(options.duration, "--duration", 0.1, 86_400) * 1000;
  const simulated = await startDeviceSimulation(options, print);
  let resolveRun: (why: string) => void = () => {};
  const stopRequested = new Promise<string>((r) => {
    resolveRun = r;
  });
  const onSignal = () => resolveRun("Ctrl-C");
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const timer = durationMs === undefined ? undefined : setTimeout(() => resolveRun("--duration"), durationMs);
  let stopped = false;
  void stopRequested.then(() => {
    stopped = true;
  });
  try {
    let resetFailed = false;
    if (options.reset) {
      const ok = await Promise.race([simulated.device.reset(), stopRequested.then(() => true)]);
      if (!ok) {
        resetFailed = true;
        process.exitCode = 1;
        resolveRun("reset not acknowledged");
      } else if (!options.bind) {
        resolveRun("reset done");
      }
    }
    if (options.bind && !resetFailed && !stopped) simulated.device.beginBinding();
    const why = await stopRequested;
    await simulated.stop();
    print({ event: "stopped", text: `stopped (${why})`, details: { reason: why } });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    clearTimeout(timer);
  }
}

/** The device's login from the options: certificate files, or a secret (Alibaba). */
function deviceLogin(options: SimulateOptions): DeviceLogin {
  const certificate = options.dir !== undefined || options.cert !== undefined || options.key !== undefined;
  const envSecret =
    options.deviceSecret === undefined && options.from === undefined && !certificate
      ? process.env.ONRAMP_DEVICE_SECRET || undefined
      : undefined;
  const secret = options.deviceSecret ?? envSecret;
  const given = [certificate, secret !== undefined, options.from !== undefined].filter(Boolean).length;
  if (given === 0) {
    throw new CliError(
      "a credential is required: --dir (or --cert and --key) for a certificate device, --device-secret or --from for a device born with a secret",
    );
  }
  if (given > 1)
    throw new CliError("give one credential: --dir / --cert + --key, --device-secret, or --from");
  if (certificate) {
    let cert = options.cert;
    let key = options.key;
    if (options.dir !== undefined) {
      if (cert !== undefined || key !== undefined) throw new CliError("--dir or --cert/--key, not both");
      // `device issue` writes device-and-ca.crt (the chain JITR needs); `device vend` device.crt.
      const chain = join(options.dir, "device-and-ca.crt");
      cert = existsSync(chain) ? chain : join(options.dir, "device.crt");
      key = join(options.dir, "device.key");
    }
    if (cert === undefined || key === undefined)
      throw new CliError("a certificate device needs both --cert and --key");
    return {
      kind: "certificate",
      thingName: options.deviceName,
      certPem: readFileOrFail(cert, "certificate"),
      keyPem: readFileOrFail(key, "private key"),
    };
  }
  if (secret !== undefined) {
    return {
      kind: "aliyun-sign",
      productKey: options.productKey,
      deviceName: options.deviceName,
      deviceSecret: secret,
    };
  }
  const file = options.from as string;
  let saved: {
    productKey?: unknown;
    deviceName?: unknown;
    deviceSecret?: unknown;
    clientId?: unknown;
    deviceToken?: unknown;
  };
  try {
    saved = JSON.parse(readFileSync(file, "utf8")) as typeof saved;
  } catch (error) {
    throw new CliError(`--from ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (saved.productKey !== options.productKey || saved.deviceName !== options.deviceName) {
    throw new CliError(
      `--from ${file} holds another device than ${options.deviceName} of ${options.productKey}`,
    );
  }
  if (typeof saved.deviceSecret === "string") {
    return {
      kind: "aliyun-sign",
      productKey: options.productKey,
      deviceName: options.deviceName,
      deviceSecret: saved.deviceSecret,
    };
  }
  if (typeof saved.clientId === "string" && typeof saved.deviceToken === "string") {
    return {
      kind: "aliyun-connwl",
      productKey: options.productKey,
      deviceName: options.deviceName,
      clientId: saved.clientId,
      deviceToken: saved.deviceToken,
    };
  }
  throw new CliError(`--from ${file} holds neither a deviceSecret nor a clientId and deviceToken`);
}

/** The endpoint closed the connection while subscribing: AWS IoT's answer to what a policy denies. */
function disconnectedOr(client: MqttClient, error: unknown): unknown {
  if (!client.connected) {
    return new CliError(
      "the endpoint closed the connection while subscribing to the binding topics: the device's policy does not allow them",
      1,
      "DISCONNECTED",
    );
  }
  return error;
}
