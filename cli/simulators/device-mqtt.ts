/**
 * How a simulated device gets onto MQTT: a certificate device (TLS client certificate, client id =
 * its thing name, as the device policy requires) or a device born with a secret (Alibaba sign or
 * connwl through the credentials module, as `onramp device connect` does).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { buildAliyunMqttCredentials } from "#credentials/aliyun-mqtt.ts";
import { buildAliyunConnwlCredentials } from "#credentials/aliyun-register.ts";
import { isLocalStackUp, readEndpointsFile } from "#local/endpoints-file.ts";
import { CliError } from "../cli-error.ts";
import { DEFAULT_ENDPOINTS_FILE } from "../wiring.ts";

export type DeviceLogin =
  | { kind: "certificate"; thingName: string; certPem: string; keyPem: string }
  | { kind: "aliyun-sign"; productKey: string; deviceName: string; deviceSecret: string }
  | { kind: "aliyun-connwl"; productKey: string; deviceName: string; clientId: string; deviceToken: string };

export type MqttEndpoint = { url: string; host: string; port: number; caPem?: string; alpn?: string };

export type EndpointOptions = {
  host?: string;
  port?: string;
  ca?: string;
  alpn?: string;
  endpoints?: string;
};

/** --host/--port/--ca, or the local stack's endpoints file (checked to be running). */
export async function resolveMqttEndpoint(options: EndpointOptions): Promise<MqttEndpoint> {
  const caPem = options.ca ? readFileOrFail(options.ca, "--ca") : undefined;
  const alpn = options.alpn ? { alpn: options.alpn } : {};
  if (options.host) {
    const port = options.port ? Number(options.port) : 8883;
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new CliError("--port must be a port number");
    return {
      url: `mqtts://${options.host}:${port}`,
      host: options.host,
      port,
      ...(caPem ? { caPem } : {}),
      ...alpn,
    };
  }
  const file = resolve(options.endpoints ?? DEFAULT_ENDPOINTS_FILE);
  const endpoints = readEndpointsFile(file);
  if (!endpoints || typeof endpoints.mqtt !== "string") {
    throw new CliError(
      `no local stack endpoints at ${file}: start it with \`npm start\`, pass --endpoints, or connect elsewhere with --host/--port/--ca.`,
      1,
      "NO_LOCAL_STACK",
    );
  }
  if (typeof endpoints.api === "string" && !(await isLocalStackUp(endpoints.api))) {
    throw new CliError(
      `no local stack is running at ${endpoints.api} (${file} is left from a stack that stopped): start it with \`npm start\`.`,
      1,
      "NO_LOCAL_STACK",
    );
  }
  const url = new URL(endpoints.mqtt);
  const port = options.port ? Number(options.port) : Number(url.port || 8883);
  const ca =
    caPem ?? (typeof endpoints.rootCa === "string" ? readFileOrFail(endpoints.rootCa, "rootCa") : undefined);
  if (!ca) throw new CliError(`${file} names no root CA: pass --ca FILE (the local stack's root CA)`);
  return { url: `mqtts://${url.hostname}:${port}`, host: url.hostname, port, caPem: ca, ...alpn };
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
  const common: IClientOptions = {
    ...(endpoint.caPem ? { ca: endpoint.caPem } : {}),
    servername: endpoint.host,
    rejectUnauthorized: true,
    ...(endpoint.alpn ? { ALPNProtocols: [endpoint.alpn] } : {}),
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
  };
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
export function connectDeviceMqtt(
  endpoint: MqttEndpoint,
  login: DeviceLogin,
  timeoutMs: number,
): Promise<MqttClient> {
  return new Promise((resolveConnect, reject) => {
    const client = mqtt.connect(endpoint.url, clientOptions(endpoint, login, timeoutMs));
    let networkError: Error | undefined;
    client.once("connect", () => resolveConnect(client));
    client.on("error", (error: Error & { code?: number | string }) => {
      if (typeof error.code !== "number") networkError = error;
    });
    client.once("close", () => {
      if (client.connected) return;
      client.end(true);
      if (
        networkError &&
        /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|certificate|CERT|TLS|SSL/i.test(networkError.message)
      ) {
        reject(new CliError(`cannot reach ${endpoint.url}: ${networkError.message}`, 1, "UNREACHABLE"));
        return;
      }
      reject(
        new CliError(
          login.kind === "certificate"
            ? `${endpoint.url} refused ${login.thingName}: the certificate is unknown, inactive or revoked, or the client id is not the thing's name (a JITR device's first connection registers it and is closed: run again)`
            : `${endpoint.url} refused the connection: wrong secret or token, unknown or disabled device (the stack's log says which)`,
          1,
          "CONNECT_REFUSED",
        ),
      );
    });
  });
}
