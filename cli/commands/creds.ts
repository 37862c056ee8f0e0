import { randomBytes } from "node:crypto";
import { type Command, Option } from "commander";
import {
  ALIYUN_SIGN_METHODS,
  type AliyunSignMethod,
  buildAliyunConnwlCredentials,
  buildAliyunMqttCredentials,
  buildAliyunRegisterCredentials,
  buildAliyunRegisterForm,
  buildEnosMqttCredentials,
  buildEnosPsk,
  CredentialError,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  deriveDeviceSecret,
  ENOS_PSK_LIFETIME_MAX,
  ENOS_PSK_LIFETIME_MIN,
  ENOS_SIGN_METHODS,
  type EnosSignMethod,
  type MqttConnectRequest,
  parseMqttConnect,
  verifyMqttConnect,
} from "#credentials/index.ts";
import { CliError } from "../cli-error.ts";
import { printResult } from "../output.ts";

/**
 * `onramp creds`: compute what a device must send (EnOS PSK and MQTT sign, Alibaba MQTT sign and
 * dynamic registration, derived secrets) and check a CONNECT the way the server does.
 * Secrets may come from environment variables instead of the command line (shell history, `ps`).
 */
export function registerCredsCommands(program: Command): void {
  const creds = program
    .command("creds")
    .description("compute and check device credentials (EnOS PSK/MQTT, Alibaba MQTT/registration)")
    .addHelpText(
      "after",
      `
Secrets can be passed in environment variables instead of options (see each command's --help),
so they stay out of shell history and the process list.

Examples:
  $ onramp creds aliyun-mqtt --product-key pk --device-name device --device-secret secret
  $ onramp creds enos-psk --product-key MuGsF6W4 --device-key 15bBZlRknc --secret "$SECRET" --json`,
    );

  registerEnosPsk(creds);
  registerEnosMqtt(creds);
  registerAliyunMqtt(creds);
  registerAliyunRegister(creds);
  registerDerive(creds);
  registerVerifyMqtt(creds);
}

// ---------------------------------------------------------------------------------------------
// enos-psk

interface EnosPskOptions {
  productKey: string;
  deviceKey: string;
  secret: string;
  secureMode: string;
  lifetime: string;
  json?: boolean;
}

function registerEnosPsk(creds: Command): void {
  creds
    .command("enos-psk")
    .description("EnOS CoAP/DTLS pre-shared key: the PSK identity and the 16-byte key")
    .requiredOption("--product-key <key>", "ProductKey")
    .requiredOption("--device-key <key>", "DeviceKey (often the module IMEI)")
    .addOption(
      new Option("--secret <secret>", "DeviceSecret (secure mode 2) or ProductSecret (secure mode 3)")
        .env("ONRAMP_SECRET")
        .makeOptionMandatory(),
    )
    .option("--secure-mode <mode>", "2 = device secret, 3 = product secret (dynamic activation)", "2")
    .option(
      "--lifetime <seconds>",
      `seconds without traffic before the device counts as offline (${ENOS_PSK_LIFETIME_MIN}-${ENOS_PSK_LIFETIME_MAX})`,
      "3600",
    )
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
Prints the identity "{ProductKey},{DeviceKey},{SecureMode},{Lifetime}" and the key
SHA-256(secret)[8:24] for the DTLS handshake (TLS_PSK_WITH_AES_128_CCM_8 or _CBC_SHA256).

Examples:
  $ onramp creds enos-psk --product-key MuGsF6W4 --device-key 15bBZlRknc --secret "$DEVICE_SECRET"
  $ ONRAMP_SECRET=... onramp creds enos-psk --product-key MuGsF6W4 --device-key 15bBZlRknc \\
      --secure-mode 3 --lifetime 600 --json`,
    )
    .action((options: EnosPskOptions) => {
      const secureMode = oneOf(options.secureMode, ["2", "3"], "--secure-mode") === "2" ? 2 : 3;
      const lifetime = integer(options.lifetime, "--lifetime", ENOS_PSK_LIFETIME_MIN, ENOS_PSK_LIFETIME_MAX);
      const psk = withOptionNames(() =>
        buildEnosPsk({
          productKey: options.productKey,
          deviceKey: options.deviceKey,
          secureMode,
          lifetime,
          secret: options.secret,
        }),
      );
      printResult(
        {
          identity: psk.identity,
          keyHex: psk.keyHex,
          keyBytes: Array.from(psk.key, (b) => `0x${b.toString(16).padStart(2, "0").toUpperCase()}`).join(
            " ",
          ),
          cipherSuites: ["TLS_PSK_WITH_AES_128_CCM_8", "TLS_PSK_WITH_AES_128_CBC_SHA256"],
        },
        options.json,
      );
    });
}

// ---------------------------------------------------------------------------------------------
// enos-mqtt

interface EnosMqttOptions {
  productKey: string;
  deviceKey: string;
  secret: string;
  clientId?: string;
  secureMode: string;
  signMethod: string;
  timestamp?: string;
  json?: boolean;
}

function registerEnosMqtt(creds: Command): void {
  creds
    .command("enos-mqtt")
    .description("EnOS MQTT CONNECT fields for a secret-based device (sign with a plain hash)")
    .requiredOption("--product-key <key>", "ProductKey")
    .requiredOption("--device-key <key>", "DeviceKey")
    .addOption(
      new Option("--secret <secret>", "DeviceSecret (secure mode 2) or ProductSecret (secure mode 3)")
        .env("ONRAMP_SECRET")
        .makeOptionMandatory(),
    )
    .option("--client-id <id>", "client id before the |...| block (default: the device key)")
    .option("--secure-mode <mode>", "2 = device secret, 3 = product secret (dynamic activation)", "2")
    .option("--sign-method <method>", `one of ${ENOS_SIGN_METHODS.join(", ")}`, "sha256")
    .option("--timestamp <ms>", "epoch milliseconds to sign (default: now)")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
clientId  {clientId}|securemode={2|3},signmethod={method},timestamp={ms}|
username  {deviceKey}&{productKey}
password  UPPERCASE hex of hash(clientId..deviceKey..productKey..timestamp.. + secret)

Examples:
  $ onramp creds enos-mqtt --product-key 123 --device-key test --client-id 123 \\
      --secret aaabbbcc123 --sign-method sha1 --timestamp 1524448722000
  $ ONRAMP_SECRET=... onramp creds enos-mqtt --product-key pk --device-key dk --json`,
    )
    .action((options: EnosMqttOptions) => {
      const secureMode = oneOf(options.secureMode, ["2", "3"], "--secure-mode") === "2" ? 2 : 3;
      const signMethod: EnosSignMethod = oneOf(options.signMethod, ENOS_SIGN_METHODS, "--sign-method");
      const timestamp = timestampOption(options.timestamp);
      const result = withOptionNames(() =>
        buildEnosMqttCredentials({
          productKey: options.productKey,
          deviceKey: options.deviceKey,
          secret: options.secret,
          ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
          secureMode,
          signMethod,
          timestamp,
        }),
      );
      printResult({ ...result, timestamp }, options.json);
    });
}

// ---------------------------------------------------------------------------------------------
// aliyun-mqtt

interface AliyunMqttOptions {
  productKey: string;
  deviceName: string;
  deviceSecret: string;
  clientId?: string;
  secureMode: string;
  signMethod: string;
  timestamp?: string;
  lowercase?: boolean;
  json?: boolean;
}

function registerAliyunMqtt(creds: Command): void {
  creds
    .command("aliyun-mqtt")
    .description("Alibaba Cloud IoT MQTT CONNECT fields, one secret per device (HMAC sign)")
    .requiredOption("--product-key <key>", "productKey")
    .requiredOption("--device-name <name>", "deviceName")
    .addOption(
      new Option("--device-secret <secret>", "deviceSecret")
        .env("ONRAMP_DEVICE_SECRET")
        .makeOptionMandatory(),
    )
    .option("--client-id <id>", "client id before the |...| block (default: {productKey}.{deviceName})")
    .option("--secure-mode <mode>", "2 = TLS, 3 = plain TCP", "2")
    .option("--sign-method <method>", `one of ${ALIYUN_SIGN_METHODS.join(", ")}`, "hmacsha256")
    .option("--timestamp <ms>", "epoch milliseconds to sign (default: now)")
    .option("--lowercase", "write the password in lowercase hex (default: uppercase, like the C SDK)")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
clientId  {clientId}|securemode={mode},signmethod={method},timestamp={ms}|
username  {deviceName}&{productKey}
password  hex HMAC(deviceSecret, "clientId{id}deviceName{dn}productKey{pk}timestamp{ms}")

Examples:
  $ onramp creds aliyun-mqtt --product-key pk --device-name device --device-secret secret \\
      --client-id 12345 --sign-method hmacsha1 --timestamp 789
  $ ONRAMP_DEVICE_SECRET=... onramp creds aliyun-mqtt --product-key a1X2bEnP82z --device-name example1 --json`,
    )
    .action((options: AliyunMqttOptions) => {
      const secureMode = oneOf(options.secureMode, ["2", "3"], "--secure-mode") === "2" ? 2 : 3;
      const signMethod: AliyunSignMethod = oneOf(options.signMethod, ALIYUN_SIGN_METHODS, "--sign-method");
      const timestamp = timestampOption(options.timestamp);
      const result = withOptionNames(() =>
        buildAliyunMqttCredentials({
          productKey: options.productKey,
          deviceName: options.deviceName,
          deviceSecret: options.deviceSecret,
          ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
          secureMode,
          signMethod,
          timestamp,
          hexCase: options.lowercase ? "lower" : "upper",
        }),
      );
      printResult({ ...result, timestamp }, options.json);
    });
}

// ---------------------------------------------------------------------------------------------
// aliyun-register

const REGISTER_MODES = ["register", "regnwl", "https", "connwl"] as const;

interface AliyunRegisterOptions {
  productKey: string;
  deviceName: string;
  productSecret?: string;
  mode: string;
  random?: string;
  clientId?: string;
  deviceToken?: string;
  secureMode: string;
  signMethod: string;
  lowercase?: boolean;
  json?: boolean;
}

function registerAliyunRegister(creds: Command): void {
  creds
    .command("aliyun-register")
    .description("Alibaba Cloud IoT dynamic registration, one secret per product (MQTT, HTTPS, connwl)")
    .requiredOption("--product-key <key>", "productKey")
    .requiredOption("--device-name <name>", "deviceName")
    .option(
      "--mode <mode>",
      "register: MQTT, pre-registered device, returns deviceSecret on /ext/register; " +
        "regnwl: MQTT, no pre-registration, returns clientId + deviceToken on /ext/regnwl; " +
        "https: POST /auth/register/device form (pre-registered devices); " +
        "connwl: connect with the clientId + deviceToken regnwl returned",
      "register",
    )
    .addOption(
      new Option("--product-secret <secret>", "productSecret (register, regnwl, https)").env(
        "ONRAMP_PRODUCT_SECRET",
      ),
    )
    .option("--random <value>", "random value to sign (default: 16 random hex characters)")
    .option(
      "--client-id <id>",
      "client id before the |...| block (register/regnwl default: {productKey}.{deviceName}; " +
        "required for connwl: the clientId regnwl returned)",
    )
    .addOption(
      new Option("--device-token <token>", "deviceToken regnwl returned (connwl)").env("ONRAMP_DEVICE_TOKEN"),
    )
    .option(
      "--secure-mode <mode>",
      "register/regnwl: 2 (classic instances, as in Alibaba's dynamic-registration docs) or -2 (new-version instances)",
      "2",
    )
    .option("--sign-method <method>", `one of ${ALIYUN_SIGN_METHODS.join(", ")}`, "hmacsha256")
    .option("--lowercase", "write the signature in lowercase hex (default: uppercase)")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
register/regnwl  clientId {id}|securemode=2,authType={mode},random={r},signmethod={m}|
                 username {deviceName}&{productKey}
                 password hex HMAC(productSecret, "deviceName{dn}productKey{pk}random{r}")
connwl           clientId {clientId}|securemode=-2,authType=connwl|, password {deviceToken}

Examples:
  $ onramp creds aliyun-register --mode regnwl --product-key al123456789 --device-name device1 \\
      --product-secret h1nQFYPZS0mW2352 --random 123 --sign-method hmacsha1 --lowercase
  $ ONRAMP_PRODUCT_SECRET=... onramp creds aliyun-register --mode https --product-key pk --device-name dn --json
  $ onramp creds aliyun-register --mode connwl --product-key pk --device-name dn \\
      --client-id "$CLIENT_ID" --device-token "$DEVICE_TOKEN"`,
    )
    .action((options: AliyunRegisterOptions) => {
      const mode = oneOf(options.mode, REGISTER_MODES, "--mode");
      if (mode === "connwl") {
        const clientId = required(options.clientId, "--client-id", "--mode connwl");
        const deviceToken = required(options.deviceToken, "--device-token", "--mode connwl");
        const result = withOptionNames(() =>
          buildAliyunConnwlCredentials({
            clientId,
            deviceToken,
            deviceName: options.deviceName,
            productKey: options.productKey,
          }),
        );
        printResult({ mode, ...result }, options.json);
        return;
      }
      const productSecret = required(options.productSecret, "--product-secret", `--mode ${mode}`);
      const signMethod: AliyunSignMethod = oneOf(options.signMethod, ALIYUN_SIGN_METHODS, "--sign-method");
      const random = options.random ?? randomBytes(8).toString("hex");
      const hexCase = options.lowercase ? "lower" : "upper";
      if (mode === "https") {
        const form = withOptionNames(() =>
          buildAliyunRegisterForm({
            productKey: options.productKey,
            deviceName: options.deviceName,
            productSecret,
            random,
            signMethod,
            hexCase,
          }),
        );
        printResult(
          {
            mode,
            method: form.method,
            path: form.path,
            contentType: form.contentType,
            body: form.body,
            random,
            sign: form.fields.sign,
          },
          options.json,
        );
        return;
      }
      const secureMode = oneOf(options.secureMode, ["2", "-2"], "--secure-mode") === "2" ? 2 : -2;
      const result = withOptionNames(() =>
        buildAliyunRegisterCredentials({
          authType: mode,
          productKey: options.productKey,
          deviceName: options.deviceName,
          productSecret,
          random,
          ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
          secureMode,
          signMethod,
          hexCase,
        }),
      );
      printResult({ mode, ...result, random, replyTopic: `/ext/${mode}` }, options.json);
    });
}

// ---------------------------------------------------------------------------------------------
// derive

interface DeriveOptions {
  groupKey: string;
  registrationId: string;
  json?: boolean;
}

function registerDerive(creds: Command): void {
  creds
    .command("derive")
    .description("derive a per-device secret from a group/product key (Azure DPS symmetric-key style)")
    .addOption(
      new Option("--group-key <base64>", "group or product key, standard base64")
        .env("ONRAMP_GROUP_KEY")
        .makeOptionMandatory(),
    )
    .requiredOption("--registration-id <id>", "device registration id (serial number, deviceName)")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
deviceSecret = base64(HMAC-SHA256(base64decode(groupKey), utf8(registrationId)))

Example:
  $ onramp creds derive --registration-id pytest \\
      --group-key r0mxLzPr9gg5DfsaxVhOwKK2+8jEHNclmCeb9iACAyb2A7yHPDrB2/+PTmwnTAetvI6oQkwarWHxYbkIVLybEg==`,
    )
    .action((options: DeriveOptions) => {
      const deviceSecret = withOptionNames(() =>
        deriveDeviceSecret(options.groupKey, options.registrationId),
      );
      printResult({ registrationId: options.registrationId, deviceSecret }, options.json);
    });
}

// ---------------------------------------------------------------------------------------------
// verify-mqtt

interface VerifyMqttOptions {
  clientId: string;
  username: string;
  password: string;
  secret: string;
  base64Password?: boolean;
  now?: string;
  maxSkew: string;
  allowMissingTimestamp?: boolean;
  json?: boolean;
}

function registerVerifyMqtt(creds: Command): void {
  creds
    .command("verify-mqtt")
    .description("check an MQTT CONNECT (clientId, username, password) the way the custom authorizer does")
    .requiredOption("--client-id <clientId>", "the full MQTT clientId, including its |...| block")
    .requiredOption("--username <username>", "the MQTT username ({name}&{productKey}[?...])")
    .requiredOption("--password <password>", "the MQTT password")
    .addOption(
      new Option(
        "--secret <secret>",
        "device secret (aliyun-sign, enos-sign mode 2), product secret (register, regnwl, " +
          "enos-sign mode 3) or deviceToken (connwl)",
      )
        .env("ONRAMP_SECRET")
        .makeOptionMandatory(),
    )
    .option("--base64-password", "the password is base64, as in a custom authorizer event")
    .option("--now <ms>", "the verifier's clock, epoch milliseconds (default: now)")
    .option(
      "--max-skew <seconds>",
      "accepted clock difference for timestamps",
      String(DEFAULT_MAX_CLOCK_SKEW_MS / 1000),
    )
    .option("--allow-missing-timestamp", "accept signed CONNECTs without a timestamp")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
Prints the scheme and parsed fields (never the password) and exits 0 when the CONNECT verifies;
prints valid=false with the error code and the field at fault and exits 2 otherwise.

Examples:
  $ onramp creds verify-mqtt --client-id '12345|securemode=2,signmethod=hmacsha1,timestamp=789|' \\
      --username 'device&pk' --password FAFD82A3D602B37FB0FA8B7892F24A477F851A14 --secret secret --now 789
  $ ONRAMP_SECRET=... onramp creds verify-mqtt --client-id "$CID" --username "$USER" \\
      --password "$B64" --base64-password --json`,
    )
    .action((options: VerifyMqttOptions) => {
      const now = options.now === undefined ? Date.now() : integer(options.now, "--now", 0);
      const maxSkewSeconds = integer(options.maxSkew, "--max-skew", 0);
      let request: MqttConnectRequest | undefined;
      try {
        request = parseMqttConnect(
          { clientId: options.clientId, username: options.username, password: options.password },
          { passwordEncoding: options.base64Password ? "base64" : "raw" },
        );
        verifyMqttConnect(request, options.secret, {
          now,
          maxClockSkewMs: maxSkewSeconds * 1000,
          requireTimestamp: !options.allowMissingTimestamp,
        });
      } catch (error) {
        if (!(error instanceof CredentialError)) throw error;
        printResult(
          {
            valid: false,
            ...(request ? { scheme: request.scheme } : {}),
            code: error.code,
            field: error.field,
            message: error.message,
          },
          options.json,
        );
        throw new CliError(`verification failed: ${error.code} (${error.field}): ${error.message}`, 2);
      }
      const { password: _password, params, ...fields } = request;
      printResult({ valid: true, ...fields, params: { ...params } }, options.json);
    });
}

// ---------------------------------------------------------------------------------------------
// helpers

/** Option names for library fields whose kebab-case differs from the option. */
const OPTION_FOR_FIELD: Readonly<Record<string, string>> = {
  securemode: "--secure-mode",
  signmethod: "--sign-method",
  secret: "--secret",
  deviceSecret: "--device-secret",
  productSecret: "--product-secret",
  groupKey: "--group-key",
};

const optionFor = (field: string): string =>
  OPTION_FOR_FIELD[field] ?? `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Runs a credentials call and turns its `CredentialError` into a `CliError` naming the option. */
function withOptionNames<T>(build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (error instanceof CredentialError) {
      throw new CliError(`${optionFor(error.field)}: ${error.message}`);
    }
    throw error;
  }
}

function oneOf<const T extends string>(value: string, allowed: readonly T[], option: string): T {
  const found = allowed.find((candidate) => candidate === value);
  if (found === undefined) throw new CliError(`${option} must be one of ${allowed.join(", ")}`);
  return found;
}

function integer(value: string, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^-?[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliError(
      max === Number.MAX_SAFE_INTEGER
        ? `${option} must be an integer >= ${min}`
        : `${option} must be an integer from ${min} to ${max}`,
    );
  }
  return n;
}

function timestampOption(value: string | undefined): number {
  return value === undefined ? Date.now() : integer(value, "--timestamp", 0);
}

function required(value: string | undefined, option: string, context: string): string {
  if (value === undefined || value === "") throw new CliError(`${option} is required with ${context}`);
  return value;
}
