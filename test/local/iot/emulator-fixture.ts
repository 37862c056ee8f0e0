/** Test fixture: an IoT emulator on 127.0.0.1 and the real AWS SDK client pointed at it. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IoTClient } from "@aws-sdk/client-iot";
import { createIotEmulator, type IotEmulator, type IotEmulatorOptions } from "#local/iot/index.ts";

export type EmulatorFixture = {
  emulator: IotEmulator;
  client: IoTClient;
  url: string;
  stop(): Promise<void>;
};

/**
 * A client with dummy credentials and no retries (a fault surfaces as the typed error at once),
 * signing for `region` (the emulator's ARNs name the region a request was signed for).
 */
export function iotClient(url: string, maxAttempts = 1, region = "us-east-1"): IoTClient {
  return new IoTClient({
    endpoint: url,
    region,
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
    maxAttempts,
  });
}

/** Starts an emulator (in memory unless `dataDir` is given) and a client for it. */
export async function startEmulator(options: IotEmulatorOptions = {}): Promise<EmulatorFixture> {
  const emulator = await createIotEmulator(options);
  const { url } = await emulator.listen(0);
  const client = iotClient(url, 1, options.region ?? "us-east-1");
  return {
    emulator,
    client,
    url,
    async stop() {
      client.destroy();
      await emulator.close();
    },
  };
}

/** A temporary folder, removed by the returned function. */
export function temporaryDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), "onramp-iot-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Asserts that a promise rejects with an SDK exception of that name; returns it. */
export async function sdkError(
  promise: Promise<unknown>,
  name: string,
): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error && error.name === name) return error;
    throw new Error(
      `expected ${name}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
  }
  throw new Error(`expected ${name}, but the call succeeded`);
}
