/**
 * Test helpers for devices whose certificates a registered CA signs (JITR, JITP) on the test
 * stack: the stack with an openssl device CA in a temporary folder, what a device connects with,
 * and the device policy JITR attaches.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreatePolicyCommand, type IoTClient } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { DEVICE_POLICY_DOCUMENT, DEVICE_POLICY_NAME, loadPolicyDocument } from "#templates/catalog.ts";
import { endClient } from "#test/local/mqtt/mqtt-device.ts";
import { type OpensslDevice, OpensslDeviceCa } from "#test/local/mqtt/openssl-device-ca.ts";
import { startTestStack } from "./local-stack.ts";

type TestStack = Awaited<ReturnType<typeof startTestStack>>;

/** The test stack, a temporary folder, and an openssl device CA made in `<dir>/ca` (not registered). */
export type DeviceCaStack = {
  stack: TestStack;
  dir: string;
  ca: OpensslDeviceCa;
  /** Ends `clients`, stops the stack, removes the folder. */
  stop(clients?: MqttClient[]): Promise<void>;
};

export async function startDeviceCaStack(options: {
  caName: string;
  tmpPrefix: string;
  stack?: Parameters<typeof startTestStack>[0];
}): Promise<DeviceCaStack> {
  const stack = await startTestStack(options.stack);
  const dir = mkdtempSync(join(tmpdir(), options.tmpPrefix));
  const stop = async (clients: MqttClient[] = []) => {
    for (const client of clients) await endClient(client);
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    return { stack, dir, ca: OpensslDeviceCa.create(join(dir, "ca"), options.caName), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** What `connectDevice` needs for `device`: its key and chain, client id = its serial unless given. */
export function certificateDevice(
  stack: { endpoints: { mqtt: string }; rootCaPem: string },
  device: OpensslDevice,
  clientId = device.serial,
) {
  return {
    url: stack.endpoints.mqtt,
    caPem: stack.rootCaPem,
    clientId,
    credentials: { keyPem: device.keyPem, certPem: device.chainPem },
  };
}

/** Creates the device policy JITR attaches (fine when it exists already). */
export async function createDevicePolicy(iot: IoTClient): Promise<void> {
  await iot
    .send(
      new CreatePolicyCommand({
        policyName: DEVICE_POLICY_NAME,
        policyDocument: loadPolicyDocument(DEVICE_POLICY_DOCUMENT),
      }),
    )
    .catch((error: Error) => {
      if (error.name !== "ResourceAlreadyExistsException") throw error;
    });
}
