import { IoTClient } from "@aws-sdk/client-iot";
import { localCredentials } from "#local/local-aws.ts";
import { resolveTarget, type Target, type TargetOptions } from "./wiring.ts";

/** An AWS IoT control-plane client for a target, configured as cliServices configures its own. */
export function cliIotClient(target: Target): IoTClient {
  return new IoTClient({
    region: target.region,
    ...(target.kind === "local" ? { credentials: localCredentials } : {}),
    ...(target.awsEndpoint ? { endpoint: target.awsEndpoint } : {}),
    maxAttempts: 5,
  });
}

/** Runs `fn` with an IoT client for the chosen target and destroys the client afterwards. */
export async function withIotClient<T>(
  options: TargetOptions,
  fn: (client: IoTClient, target: Target) => Promise<T>,
): Promise<T> {
  const target = resolveTarget(options);
  const client = cliIotClient(target);
  try {
    return await fn(client, target);
  } finally {
    client.destroy();
  }
}
