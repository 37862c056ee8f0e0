/**
 * How a simulated device gets onto MQTT: a certificate device (TLS client certificate, client id =
 * its thing name, as the device policy requires) or a device born with a secret (Alibaba sign or
 * connwl through the credentials module, as `onramp device connect` does). The endpoint and the
 * connection attempt are `device connect`'s (../device/mqtt-endpoint.ts).
 */
import { readFileSync } from "node:fs";
import type { IClientOptions, MqttClient } from "mqtt";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import { buildAliyunConnwlCredentials } from "#credentials/aliyun-register.ts";
import { CliError } from "../cli-error.ts";
import {
  connectMqtt,
  type MqttEndpoint,
  type MqttEndpointOptions,
  resolveMqttEndpoint as resolveEndpoint,
  tlsClientOptions,
} from "../device/mqtt-endpoint.ts";

export type { MqttEndpoint } from "../device/mqtt-endpoint.ts";

export type DeviceLogin =
  | { kind: "certificate"; thingName: string; certPem: string; keyPem: string }
  | { kind: "aliyun-sign"; productKey: string; deviceName: string; deviceSecret: string }
  | { kind: "aliyun-connwl"; productKey: string; deviceName: string; clientId: string; deviceToken: string };

/** --host/--port/--ca, or the local stack's endpoints file (checked to be running). */
export async function resolveMqttEndpoint(options: MqttEndpointOptions): Promise<MqttEndpoint> {
  return resolveEndpoint(options, readFileOrFail);
}

export function readFileOrFail(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new CliError(
      `${what}: cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function clientOptions(endpoint: MqttEndpoint, login: DeviceLogin, timeoutMs: number): IClientOptions {
  const common = tlsClientOptions(endpoint, timeoutMs);
  if (login.kind === "certificate") {
    return { ...common, clientId: login.thingName, cert: login.certPem, key: login.keyPem };
  }
  const credentials =
    login.kind === "aliyun-sign"
      ? buildAliyunMqttCredentials({
          productKey: login.productKey,
          deviceName: login.deviceName,
          deviceSecret: login.deviceSecret,
          timestamp: Date.now(),
        })
      : buildAliyunConnwlCredentials({
          productKey: login.productKey,
          deviceName: login.deviceName,
          clientId: login.clientId,
          deviceToken: login.deviceToken,
        });
  return {
    ...common,
    clientId: credentials.clientId,
    username: credentials.username,
    password: credentials.password,
  };
}

/** Connects once; a refusal or an unreachable endpoint is a CliError saying which. */
export async function connectDeviceMqtt(
  endpoint: MqttEndpoint,
  login: DeviceLogin,
  timeoutMs: number,
): Promise<MqttClient> {
  const client = await connectMqtt(endpoint.url, clientOptions(endpoint, login, timeoutMs));
  if (client) return client;
  throw new CliError(
    login.kind === "certificate"
      ? `${endpoint.url} refused ${login.thingName}: the certificate is unknown, inactive or revoked, or the client id is not the thing's name (a JITR device's first connection registers it and is closed: run again)`
      : `${endpoint.url} refused the connection: wrong secret or token, unknown or disabled device (the stack's log says which)`,
    1,
    "CONNECT_REFUSED",
  );
}
