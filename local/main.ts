import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { consoleLogger } from "./console-logger.ts";
import { seedDemo } from "./seed-demo.ts";
import { defaultPorts, startLocalStack } from "./stack.ts";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const usage = `Usage: npm start -- [options]

Runs the whole iot-onramp backend locally: DynamoDB (dynalite), the AWS IoT and Secrets Manager
emulators, and the certificate vending API. State is kept in the data folder.

Options:
  --data-dir DIR     data folder (default .onramp)
  --in-memory        keep nothing on disk
  --host HOST        address to listen on (default 127.0.0.1)
  --api-port N       vending API (default ${defaultPorts.api})
  --aws-port N       AWS endpoint: IoT control plane + Secrets Manager (default ${defaultPorts.aws})
  --dynamodb-port N  DynamoDB (default ${defaultPorts.dynamodb})
  --mqtt-port N      MQTT over TLS (default ${defaultPorts.mqtt})
  --no-demo          do not seed the demo product
  -h, --help         show this help`;

const { values } = parseArgs({
  options: {
    "data-dir": { type: "string", default: ".onramp" },
    "in-memory": { type: "boolean", default: false },
    host: { type: "string", default: "127.0.0.1" },
    "api-port": { type: "string", default: String(defaultPorts.api) },
    "aws-port": { type: "string", default: String(defaultPorts.aws) },
    "dynamodb-port": { type: "string", default: String(defaultPorts.dynamodb) },
    "mqtt-port": { type: "string", default: String(defaultPorts.mqtt) },
    "no-demo": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (values.help) {
  console.log(usage);
  process.exit(0);
}

const port = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`--${name} must be a port number (0-65535)`);
    process.exit(2);
  }
  return n;
};

const logger = consoleLogger();
const dataDir = values["in-memory"] ? undefined : resolve(values["data-dir"]);
const started = Date.now();
const stack = await startLocalStack({
  ...(dataDir ? { dataDir } : {}),
  host: values.host,
  ports: {
    api: port("api-port"),
    aws: port("aws-port"),
    dynamodb: port("dynamodb-port"),
    mqtt: port("mqtt-port"),
  },
  logger,
}).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const hint = /EADDRINUSE/.test(message)
    ? "\n  Another local stack (or another program) uses that port: stop it, or choose ports with --api-port, --aws-port, --dynamodb-port, --mqtt-port."
    : "";
  console.error(`npm start: the local stack did not start: ${message}${hint}`);
  process.exit(1);
});
const demo = values["no-demo"] ? undefined : await seedDemo(stack.services);
const e = stack.endpoints;

console.log(`
iot-onramp local stack is up (${Date.now() - started} ms)${dataDir ? `, data in ${dataDir}` : ", in memory"}

  Vending API      ${e.api}/v1/certificates   (contract: ${e.api}/openapi.yaml)
  AWS endpoint     ${e.aws}   (AWS IoT control plane + Secrets Manager; any credentials)
  DynamoDB         ${e.dynamodb}   (table ${e.tableName})
  MQTT (TLS)       ${e.mqtt}
${dataDir ? `  Endpoints file   ${dataDir}/endpoints.json\n` : ""}`);
if (demo) {
  console.log(`Demo product "${demo.productKey}" with serials ${demo.serials.join(", ")}.
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

  Talk to the IoT emulator with the AWS SDK or CLI (any credentials):
    aws --endpoint-url ${e.aws} --region ${e.region} iot list-things
`);
}
console.log("Press Ctrl+C to stop.");

const shutdown = async () => {
  await stack.close();
  process.exit(0);
};
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
