import { rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { awsCliEnvironment, CREDENTIALS_FILE } from "./aws-auth/local-aws-credentials.ts";
import { consoleLogger } from "./console-logger.ts";
import {
  AWS_ENV_FILE,
  ENDPOINTS_FILE,
  type EndpointsFileExtras,
  isLocalStackUp,
  readEndpointsFile,
  removeEndpointsFile,
  writeEndpointsFile,
} from "./endpoints-file.ts";
import { secretDemoInstructions, seedDemo } from "./seed-demo.ts";
import { defaultPorts, startLocalStack } from "./stack.ts";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const usage = `Usage: npm start -- [options]

Runs the whole iot-onramp backend locally: DynamoDB (dynalite), the AWS IoT and Secrets Manager
emulators, and the certificate vending API. State is kept in the data folder.

Options:
  --data-dir DIR     data folder (default .onramp); endpoints.json there tells the CLI where
                     the running stack listens (removed when the stack stops)
  --in-memory        keep no state on disk (only endpoints.json, aws.env and the root CA are
                     written to the data folder, and removed on exit)
  --reset            delete the data folder's state first (registry, AWS IoT, secrets, key
                     pair) and start empty; refused while a stack runs on that folder
  --host HOST        address to listen on (default 127.0.0.1); only loopback addresses
                     (127.0.0.0/8, ::1, localhost) unless --i-know-this-is-exposed
  --i-know-this-is-exposed
                     allow another --host: the local stack is for development; it would
                     serve the vending API, MQTT and DynamoDB (no authentication) to the network
  --api-port N       vending API (default ${defaultPorts.api})
  --aws-port N       AWS endpoint: IoT control plane + Secrets Manager (default ${defaultPorts.aws})
  --dynamodb-port N  DynamoDB (default ${defaultPorts.dynamodb})
  --mqtt-port N      MQTT over TLS (default ${defaultPorts.mqtt})
  --coap-port N      CoAP over DTLS-PSK for NB-IoT devices, UDP (default ${defaultPorts.coap})
  --claim-ttl S      seconds a provisioning claim blocks other flows on a device (default 120;
                     shorter only for crash drills: a claim must outlive the flow holding it)
  --aws-quotas P     default: enforce AWS IoT's default TPS per control-plane operation
                     (ThrottlingException) and 1 MQTT CONNECT/s per client id; off (default)
  --no-demo          do not seed the demo product
  -h, --help         show this help`;

const { values } = parseArgs({
  options: {
    "data-dir": { type: "string", default: ".onramp" },
    "in-memory": { type: "boolean", default: false },
    reset: { type: "boolean", default: false },
    host: { type: "string", default: "127.0.0.1" },
    "i-know-this-is-exposed": { type: "boolean", default: false },
    "api-port": { type: "string", default: String(defaultPorts.api) },
    "aws-port": { type: "string", default: String(defaultPorts.aws) },
    "dynamodb-port": { type: "string", default: String(defaultPorts.dynamodb) },
    "mqtt-port": { type: "string", default: String(defaultPorts.mqtt) },
    "coap-port": { type: "string", default: String(defaultPorts.coap) },
    "claim-ttl": { type: "string", default: "120" },
    "aws-quotas": { type: "string", default: "off" },
    "no-demo": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (values.help) {
  console.log(usage);
  process.exit(0);
}

/** True for addresses only this machine reaches: 127.0.0.0/8, ::1 (also IPv4-mapped), localhost. */
function isLoopback(host: string): boolean {
  const address = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (address === "localhost") return true;
  const v4 = address.startsWith("::ffff:") ? address.slice("::ffff:".length) : address;
  if (isIP(v4) === 4) return v4.split(".")[0] === "127";
  return isIP(address) === 6 && /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(address);
}

if (!isLoopback(values.host) && !values["i-know-this-is-exposed"]) {
  console.error(
    `npm start: refusing --host ${values.host}: it is not a loopback address, so other machines could reach the vending API, MQTT and DynamoDB (which has no authentication).\n  Use 127.0.0.1 (the default), or add --i-know-this-is-exposed if you really mean it.`,
  );
  process.exit(2);
}

const port = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`--${name} must be a port number (0-65535)`);
    process.exit(2);
  }
  return n;
};

const claimTtlSeconds = Number(values["claim-ttl"]);
if (!Number.isFinite(claimTtlSeconds) || claimTtlSeconds < 1 || claimTtlSeconds > 3600) {
  console.error("--claim-ttl must be a number of seconds from 1 to 3600");
  process.exit(2);
}

const awsQuotas = values["aws-quotas"];
if (awsQuotas !== "default" && awsQuotas !== "off") {
  console.error("--aws-quotas must be default or off");
  process.exit(2);
}

/** What a data folder holds (only these are deleted by --reset). */
const STATE_ENTRIES = ["dynamodb", "iot", "secrets.json", CREDENTIALS_FILE, AWS_ENV_FILE, ENDPOINTS_FILE];
const IN_MEMORY_ROOT_CA = "in-memory-root-ca.pem";

const folder = resolve(values["data-dir"]);
// One stack per data folder: a second one would share (and corrupt) the first one's state.
const running = readEndpointsFile(join(folder, ENDPOINTS_FILE));
if (typeof running?.api === "string" && (await isLocalStackUp(running.api))) {
  console.error(
    `npm start: a local stack is already running on ${folder} (API ${running.api}${typeof running.pid === "number" ? `, pid ${running.pid}` : ""}): stop it first, or use another --data-dir.`,
  );
  process.exit(1);
}
if (values.reset) {
  for (const entry of [...STATE_ENTRIES, IN_MEMORY_ROOT_CA]) {
    rmSync(join(folder, entry), { recursive: true, force: true });
  }
  console.log(`Reset: deleted the local stack's state in ${folder}.`);
}

const logger = consoleLogger();
const dataDir = values["in-memory"] ? undefined : folder;
const started = Date.now();
const stack = await startLocalStack({
  ...(dataDir ? { dataDir } : {}),
  host: values.host,
  ports: {
    api: port("api-port"),
    aws: port("aws-port"),
    dynamodb: port("dynamodb-port"),
    mqtt: port("mqtt-port"),
    coap: port("coap-port"),
  },
  claimTtlMs: claimTtlSeconds * 1000,
  awsQuotas,
  logger,
}).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const hint = /EADDRINUSE/.test(message)
    ? "\n  Another local stack (or another program) uses that port: stop it, or choose ports with --api-port, --aws-port, --dynamodb-port, --mqtt-port, --coap-port."
    : "";
  console.error(`npm start: the local stack did not start: ${message}${hint}`);
  process.exit(1);
});
const demo = values["no-demo"] ? undefined : await seedDemo(stack.services);
const e = stack.endpoints;

// The CLI finds the stack through <data-dir>/endpoints.json, in memory too; removed on exit.
const rootCa = dataDir ? join(dataDir, "iot", "root-ca.pem") : join(folder, IN_MEMORY_ROOT_CA);
const extras: EndpointsFileExtras = { pid: process.pid, rootCa, inMemory: !dataDir };
writeEndpointsFile(folder, { ...e, ...extras }, awsCliEnvironment(stack.credentials, e.region));
if (!dataDir) writeFileSync(rootCa, stack.rootCaPem, { mode: 0o600 });
const removeFiles = () => {
  removeEndpointsFile(folder, process.pid);
  if (!dataDir) rmSync(rootCa, { force: true });
};
process.once("exit", removeFiles);

console.log(`
iot-onramp local stack is up (${Date.now() - started} ms)${dataDir ? `, data in ${dataDir}` : ", in memory"}

  Vending API      ${e.api}/v1/certificates   (contract: ${e.api}/openapi.yaml)
  Phone API        ${e.api}/v1/bindings   (contract: ${e.api}/phone-api.yaml; ID tokens: npx onramp users create <name>)
  AWS endpoint     ${e.aws}   (AWS IoT control plane + Secrets Manager; SigV4 with the key pair below)
  DynamoDB         ${e.dynamodb}   (table ${e.tableName})
  MQTT (TLS)       ${e.mqtt}
  CoAP (DTLS-PSK)  ${e.coap}   (NB-IoT devices, EnOS identities: npx onramp device coap --help)
  Root CA          ${rootCa}   (the MQTT endpoint's and issued certificates' CA: --cafile)
  Endpoints file   ${join(folder, ENDPOINTS_FILE)}   (the CLI reads it; removed when the stack stops)

  The AWS endpoint accepts only this key pair${dataDir ? ` (kept in ${dataDir})` : " (new on every in-memory start)"}; for the aws CLI:
    . ${join(folder, AWS_ENV_FILE)}      # or paste:
    ${awsCliEnvironment(stack.credentials, e.region)}
`);
if (demo) {
  console.log(`Demo product "${demo.productKey}" with serials ${demo.serials.join(", ")}
  (reprovision: replace, so vending a serial again with a new key replaces its certificate;
  server-made keys allowed).
  DEMO ONLY - not real secrets; each device's secret (derived from the product secret):
${Object.entries(demo.deviceSecrets)
  .map(([serial, secret]) => `    ${serial}  ${secret}`)
  .join("\n")}

  Vend a certificate like a device would (makes a key + CSR, signs, calls the API):
    npx onramp device vend --serial ${demo.serials[0]} --product-key ${demo.productKey} --secret '${demo.deviceSecret}' --out ./device-${demo.serials[0]}

  Then connect over MQTT with the files it saved (the first publish goes to the thing's own topic):
    mosquitto_pub --cafile device-${demo.serials[0]}/root-ca.pem --cert device-${demo.serials[0]}/device.crt --key device-${demo.serials[0]}/device.key \\
      -h localhost -p ${new URL(e.mqtt).port} -i ${demo.serials[0]} -t things/${demo.serials[0]}/hello -m hi

  Devices with certificates from your own CA (JITR / JITP): see docs/by-hand.md, or
    npx onramp ca create --out ./ca && npx onramp ca register --ca-cert ca/root-ca.pem --ca-key ca/root-ca.key

  Talk to the IoT emulator with the AWS SDK or CLI (after the export line above):
    aws --endpoint-url ${e.aws} --region ${e.region} iot list-things
`);
  console.log(
    secretDemoInstructions(demo.secretProducts, { mqttPort: Number(new URL(e.mqtt).port), rootCa }),
  );
}
console.log("Press Ctrl+C to stop.");

const shutdown = async () => {
  removeFiles(); // first: a CLI call during the shutdown already says no stack runs
  await stack.close();
  process.exit(0);
};
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
