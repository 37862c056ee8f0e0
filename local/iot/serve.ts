/**
 * Runs the AWS IoT emulator alone:
 *   npx tsx local/iot/serve.ts [--port 4566] [--host 127.0.0.1] [--data-dir .onramp/iot]
 *                              [--data-endpoint localhost:8883] [--region us-east-1]
 * then point the AWS SDK (`endpoint`) or the aws CLI (`--endpoint-url`) at the printed URL.
 */
import { parseArgs } from "node:util";
import { consoleLogger } from "../console-logger.ts";
import { createIotEmulator } from "./emulator.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "4566" },
    host: { type: "string", default: "127.0.0.1" },
    "data-dir": { type: "string" },
    "data-endpoint": { type: "string", default: "localhost:8883" },
    region: { type: "string", default: "us-east-1" },
    "account-id": { type: "string", default: "000000000000" },
  },
});

const emulator = await createIotEmulator({
  ...(values["data-dir"] ? { dataDir: values["data-dir"] } : {}),
  region: values.region,
  accountId: values["account-id"],
  dataEndpoint: values["data-endpoint"],
  logger: consoleLogger(),
});
const { url } = await emulator.listen(Number(values.port), values.host);
process.stdout.write(
  [
    `AWS IoT emulator on ${url} (${values["data-dir"] ? `state in ${values["data-dir"]}` : "in memory"})`,
    `  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws iot get-registration-code --endpoint-url ${url} --region ${values.region}`,
    `  curl -X POST ${url}/_emulator/faults -d '{"operation":"RegisterThing","error":"ThrottlingException"}'`,
    "",
  ].join("\n"),
);
const stop = () => {
  emulator.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
