import { resolve } from "node:path";
import type { Command } from "commander";
import { isLocalStackUp, readEndpointsFile } from "#local/endpoints-file.ts";
import { CliError } from "../cli-error.ts";
import { seconds, whole } from "../number-options.ts";
import { printResult } from "../output.ts";
import {
  AWSS_COAP_PORT,
  INFO_GET_PATH,
  isBindingToken,
  newBindingToken,
  parseHostPort,
} from "../simulators/bind-protocol.ts";
import { type Binding, PhoneApi, PhoneApiError, type TokenStatus } from "../simulators/phone-api.ts";
import { discoverDevices, type FoundDevice } from "../simulators/phone-lan.ts";
import { DEFAULT_ENDPOINTS_FILE } from "../wiring.ts";
import { localIdToken } from "./users.ts";

type AuthOptions = { idToken?: string; user?: string; api?: string; endpoints?: string; json?: boolean };

const AUTH_HELP = `
The user: --id-token JWT (or env ONRAMP_ID_TOKEN; on AWS the Cognito user pool's ID token), or
locally --user NAME (a user made with \`onramp users create NAME\`; a fresh token is issued as
\`onramp users token\` does). The API: --api URL, or the local stack's (endpoints.json).`;

/** `onramp phone discover | bind | devices | unbind | token`: what a phone app does to bind a device. */
export function registerPhoneCommands(program: Command): void {
  const phone = program
    .command("phone")
    .description(
      "Do what a phone app does to bind devices to its user: LAN discovery (CoAP) and the binding API",
    );

  phone
    .command("discover")
    .description(
      "Find devices on the LAN: hear device.info.notify (and answer it) and/or ask with GET /sys/device/info/get",
    )
    .option("--listen <port>", "UDP port to hear notifies on", String(AWSS_COAP_PORT))
    .option("--no-listen", "do not listen for notifies (only GET)")
    .option("--get", "ask with a CoAP GET: to the AWSS multicast group, or to each --device")
    .option(
      "--device <host:port>",
      "ask this device with a unicast GET (repeatable; implies --get)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option("--product-key <key>", "with --device-name: GET /sys/{pk}/{dn}/device/info/get instead")
    .option("--device-name <name>", "with --product-key: the device to ask")
    .option("--no-multicast", "neither join the AWSS group nor send the GET to it")
    .option("--timeout <seconds>", "listen/ask this long", "5")
    .option("--first", "stop at the first device found")
    .option("--json", 'print {"devices": [...]} (errors as {"error": {code, message}})')
    .addHelpText(
      "after",
      `
Tokens are printed in full: the phone needs one to bind (onramp phone bind). A device answers a
GET only with a token the cloud acknowledged and that has not expired (45 s), then moves on to a
new one; a second GET gets that new one. On one host, give the device and this listener
different ports (device: --notify-to 127.0.0.1:PORT, here: --listen PORT).

Examples:
  onramp phone discover --listen 5686 --timeout 10
  onramp phone discover --no-listen --device 127.0.0.1:5683`,
    )
    .action(async (options: DiscoverCliOptions) => {
      await discover(options);
    });

  withAuth(
    phone
      .command("bind")
      .description("Bind a device to the user with the token heard on the LAN (POST /v1/bindings)")
      .requiredOption("--product-key <key>", "the device's product key")
      .requiredOption("--device-name <name>", "the device name")
      .requiredOption("--token <hex>", "the token (32 hex characters) from `phone discover`"),
  ).action(async (options: AuthOptions & { productKey: string; deviceName: string; token: string }) => {
    const token = checkToken(options.token, "--token");
    const api = await phoneApi(options);
    const { created, binding } = await apiCall(() =>
      api.bind({ productKey: options.productKey, deviceName: options.deviceName, token }),
    );
    printResult({ ...binding, created }, options.json);
  });

  withAuth(phone.command("devices").description("List the user's devices (GET /v1/devices)")).action(
    async (options: AuthOptions) => {
      const api = await phoneApi(options);
      const devices = await apiCall(() => api.devices());
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ devices }, null, 2)}\n`);
      } else if (devices.length === 0) {
        process.stdout.write("no devices bound to this user\n");
      } else {
        for (const d of devices)
          process.stdout.write(`${d.productKey}/${d.deviceName}  bound ${d.boundAt}\n`);
      }
    },
  );

  withAuth(
    phone
      .command("unbind")
      .description("Unbind a device from the user (DELETE /v1/bindings/{pk}/{dn}; also fine when not bound)")
      .requiredOption("--product-key <key>", "the device's product key")
      .requiredOption("--device-name <name>", "the device name"),
  ).action(async (options: AuthOptions & { productKey: string; deviceName: string }) => {
    const api = await phoneApi(options);
    await apiCall(() => api.unbind(options.productKey, options.deviceName));
    printResult(
      { productKey: options.productKey, deviceName: options.deviceName, unbound: true },
      options.json,
    );
  });

  withAuth(
    phone
      .command("token")
      .description(
        "Path 3: make a token to give the device during Wi-Fi provisioning, register it, wait until the device reported it",
      )
      .option("--token <hex>", "use this token instead of a fresh random one")
      .option("--timeout <seconds>", "stop waiting after this long", "120")
      .option("--interval <seconds>", "poll the status this often (a 429's Retry-After is honoured)", "2")
      .option("--no-wait", "register and print the token, do not wait")
      .addHelpText(
        "after",
        `
Prints the token first (give it to the device: onramp device simulate --bind --phone-token TOKEN ...),
then polls POST /v1/binding-tokens/status until the device reported it and the user is bound.
Works whichever reaches the cloud first.`,
      ),
  ).action(
    async (options: AuthOptions & { token?: string; timeout: string; interval: string; wait?: boolean }) => {
      await phoneToken(options);
    },
  );
}

type DiscoverCliOptions = {
  listen: string | false;
  get?: boolean;
  device?: string[];
  productKey?: string;
  deviceName?: string;
  multicast?: boolean;
  timeout: string;
  first?: boolean;
  json?: boolean;
};

async function discover(options: DiscoverCliOptions): Promise<void> {
  const devices = (options.device ?? []).map((value) => {
    try {
      return parseHostPort(value, "--device");
    } catch (error) {
      throw new CliError((error as Error).message);
    }
  });
  if ((options.productKey === undefined) !== (options.deviceName === undefined)) {
    throw new CliError("--product-key and --device-name go together (GET /sys/{pk}/{dn}/device/info/get)");
  }
  const get = options.get === true || devices.length > 0;
  const listenPort = options.listen === false ? undefined : whole(options.listen, "--listen", 0, 65535);
  if (listenPort === undefined && !get)
    throw new CliError("nothing to do: --no-listen needs --get or --device");
  if (get && devices.length === 0 && options.multicast === false) {
    throw new CliError("--get with --no-multicast needs --device HOST:PORT");
  }
  const timeoutMs = seconds(options.timeout, "--timeout", 0.1, 3600) * 1000;
  const path =
    options.productKey !== undefined
      ? `/sys/${options.productKey}/${options.deviceName}/device/info/get`
      : INFO_GET_PATH;
  const found = await discoverDevices({
    ...(listenPort !== undefined ? { listenPort } : {}),
    multicast: options.multicast !== false,
    ...(get ? { get: { devices, path } } : {}),
    timeoutMs,
    first: options.first === true,
    onFound: (device) => {
      if (!options.json) process.stdout.write(`${describe(device)}\n`);
    },
    onWarning: (text) => {
      if (!options.json) process.stderr.write(`onramp: ${text}\n`);
    },
  }).catch((error: Error) => {
    throw new CliError(error.message, 1, "LAN_PORT_UNAVAILABLE");
  });
  if (found.length === 0) {
    throw new CliError(
      `no device heard within ${options.timeout} s: is it bound to the cloud (match_reply received)? A device answers a GET only with a token the cloud acknowledged; notifies go to the multicast group and --notify-to`,
      1,
      "NO_DEVICE_FOUND",
    );
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ devices: found }, null, 2)}\n`);
  } else {
    const d = found[0] as FoundDevice;
    process.stdout.write(
      `bind it: onramp phone bind --product-key ${d.productKey} --device-name ${d.deviceName} --token ${d.token} --user NAME\n`,
    );
  }
}

function describe(d: FoundDevice): string {
  return `${d.via === "notify" ? "notify" : "get   "}  ${d.productKey}/${d.deviceName}  token ${d.token}  remainTime ${d.remainTime} ms  ip ${d.ip}  from ${d.from}`;
}

async function phoneToken(
  options: AuthOptions & { token?: string; timeout: string; interval: string; wait?: boolean },
): Promise<void> {
  const token = options.token !== undefined ? checkToken(options.token, "--token") : newBindingToken();
  const timeoutMs = seconds(options.timeout, "--timeout", 1, 3600) * 1000;
  const intervalMs = seconds(options.interval, "--interval", 0.05, 600) * 1000;
  const api = await phoneApi(options);
  const say = (line: Record<string, unknown>, text: string) => {
    if (options.json) process.stdout.write(`${JSON.stringify(line)}\n`);
    else process.stdout.write(`${text}\n`);
  };
  let status: TokenStatus = await apiCall(() => api.registerToken(token));
  say(
    { step: "registered", token, status: status.status },
    `token ${token} registered (${status.status}): give it to the device, e.g.\n  onramp device simulate --bind --phone-token ${token} --product-key PK --device-name DN ...`,
  );
  if (options.wait === false && status.status !== "bound") return;
  const deadline = Date.now() + timeoutMs;
  while (status.status !== "bound") {
    let wait = intervalMs;
    try {
      await sleep(Math.min(wait, Math.max(0, deadline - Date.now())));
      if (Date.now() >= deadline) break;
      status = await api.tokenStatus(token);
    } catch (error) {
      if (error instanceof PhoneApiError && error.status === 429) {
        wait = (error.retryAfterSeconds ?? 1) * 1000;
        say(
          { step: "throttled", retryAfterSeconds: wait / 1000 },
          `throttled: waiting ${wait / 1000} s (Retry-After)`,
        );
        await sleep(Math.min(wait, Math.max(0, deadline - Date.now())));
        continue;
      }
      throw apiError(error);
    }
  }
  if (status.status !== "bound") {
    throw new CliError(
      `the device did not report token ${token.slice(0, 4)}… within ${options.timeout} s (still pending): did it get the token, and did it get match_reply?`,
      1,
      "BINDING_TIMEOUT",
    );
  }
  const binding: Binding = status.binding;
  say(
    { step: "bound", binding },
    `bound: ${binding.productKey}/${binding.deviceName} to user ${binding.userId} at ${binding.boundAt}`,
  );
}

function withAuth(command: Command): Command {
  return command
    .option("--id-token <jwt>", "the user's ID token (or env ONRAMP_ID_TOKEN)")
    .option("--user <name>", "local stack: act as this local user (onramp users create)")
    .option("--api <url>", "the binding API's base URL (default: the local stack's)")
    .option(
      "--endpoints <file>",
      "local stack endpoints file written by `npm start`",
      process.env.ONRAMP_ENDPOINTS ?? DEFAULT_ENDPOINTS_FILE,
    )
    .option("--json", 'print JSON (errors as {"error": {code, message}})')
    .addHelpText("after", AUTH_HELP);
}

async function phoneApi(options: AuthOptions): Promise<PhoneApi> {
  const file = resolve(options.endpoints ?? DEFAULT_ENDPOINTS_FILE);
  let apiUrl = options.api;
  if (!apiUrl) {
    const endpoints = readEndpointsFile(file);
    if (!endpoints || typeof endpoints.api !== "string") {
      throw new CliError(
        `no local stack endpoints at ${file}: start it with \`npm start\`, pass --endpoints, or give the API with --api URL`,
        1,
        "NO_LOCAL_STACK",
      );
    }
    if (!(await isLocalStackUp(endpoints.api))) {
      throw new CliError(
        `no local stack is running at ${endpoints.api} (${file} is left from a stack that stopped): start it with \`npm start\`.`,
        1,
        "NO_LOCAL_STACK",
      );
    }
    apiUrl = endpoints.api;
  }
  const given = [options.idToken !== undefined, options.user !== undefined].filter(Boolean).length;
  if (given > 1) throw new CliError("give either --id-token or --user");
  let idToken =
    options.idToken ?? (options.user === undefined ? process.env.ONRAMP_ID_TOKEN || undefined : undefined);
  if (idToken === undefined && options.user !== undefined) idToken = await localIdToken(file, options.user);
  if (idToken === undefined) {
    throw new CliError(
      "who is the user? pass --id-token JWT (or env ONRAMP_ID_TOKEN), or locally --user NAME",
    );
  }
  return new PhoneApi(apiUrl, idToken);
}

async function apiCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw apiError(error);
  }
}

function apiError(error: unknown): unknown {
  if (!(error instanceof PhoneApiError)) return error;
  const hint =
    error.code === "BINDING_REFUSED"
      ? " (the token is unknown, expired, already used or another device's: get a fresh one from the device)"
      : error.code === "DEVICE_ALREADY_BOUND"
        ? " (single-owner product: the owner unbinds, or the device is reset)"
        : error.retryAfterSeconds !== undefined
          ? ` (retry after ${error.retryAfterSeconds} s)`
          : error.status === 401
            ? " (the ID token is missing, expired or not from this API's issuer)"
            : "";
  return new CliError(`${error.message}${hint}`, 1, error.code);
}

function checkToken(value: string, flag: string): string {
  const token = value.toUpperCase();
  if (!isBindingToken(token)) throw new CliError(`${flag} must be 32 hexadecimal characters (16 bytes)`);
  return token;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}
