/**
 * Where a device's MQTT connection goes and how it is opened, for every CLI command that acts as a
 * device (`device connect`, `device simulate`): --host/--port/--ca/--alpn or the local stack's
 * endpoints file, TLS that verifies the endpoint, one attempt without reconnects.
 */
import { resolve } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { isLocalStackUp, readEndpointsFile } from "#local/endpoints-file.ts";
import { CliError } from "../cli-error.ts";
import { DEFAULT_ENDPOINTS_FILE } from "../wiring.ts";

export type MqttEndpoint = { url: string; host: string; port: number; caPem?: string; alpn?: string };

export type MqttEndpointOptions = {
  host?: string;
  port?: string;
  ca?: string;
  alpn?: string;
  endpoints?: string;
};

/** Reads a CA file named by --ca, or by the endpoints file's rootCa; the caller words the error. */
export type ReadCa = (file: string, namedBy: "--ca" | "rootCa") => string;

/**
 * --host/--port/--ca, or the local stack's endpoints file (checked to be running). From the
 * endpoints file, `stackApi` is the local stack's API URL, when it names one.
 */
export async function resolveMqttEndpoint(
  options: MqttEndpointOptions,
  readCa: ReadCa,
): Promise<MqttEndpoint & { stackApi?: string }> {
  const caPem = options.ca ? readCa(options.ca, "--ca") : undefined;
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
  const stackApi = typeof endpoints.api === "string" ? endpoints.api : undefined;
  if (stackApi && !(await isLocalStackUp(stackApi))) {
    throw new CliError(
      `no local stack is running at ${stackApi} (${file} is left from a stack that stopped): start it with \`npm start\`.`,
      1,
      "NO_LOCAL_STACK",
    );
  }
  const url = new URL(endpoints.mqtt);
  const port = options.port ? Number(options.port) : Number(url.port || 8883);
  const ca = caPem ?? (typeof endpoints.rootCa === "string" ? readCa(endpoints.rootCa, "rootCa") : undefined);
  if (!ca) throw new CliError(`${file} names no root CA: pass --ca FILE (the local stack's root CA)`);
  return {
    url: `mqtts://${url.hostname}:${port}`,
    host: url.hostname,
    port,
    caPem: ca,
    ...(stackApi ? { stackApi } : {}),
    ...alpn,
  };
}

/** The TLS and session options every device connection uses; the caller adds the login. */
export function tlsClientOptions(endpoint: MqttEndpoint, timeoutMs: number): IClientOptions {
  return {
    ...(endpoint.caPem ? { ca: endpoint.caPem } : {}),
    servername: endpoint.host,
    rejectUnauthorized: true,
    ...(endpoint.alpn ? { ALPNProtocols: [endpoint.alpn] } : {}),
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
  };
}

/**
 * One connection attempt; resolves the connected client, or undefined when the endpoint refused
 * (a CONNACK with an error code, or a close without CONNACK). An unreachable endpoint or a TLS
 * failure is a CliError UNREACHABLE. `onMessage` is attached before the CONNECT goes out, so a
 * message pushed right after CONNACK is not missed.
 */
export function connectMqtt(
  url: string,
  options: IClientOptions,
  onMessage?: (topic: string, payload: Buffer) => void,
): Promise<MqttClient | undefined> {
  return new Promise((resolveConnect, reject) => {
    const client = mqtt.connect(url, options);
    if (onMessage) client.on("message", onMessage);
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
        /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|certificate|self.signed|CERT|TLS|SSL/i.test(networkError.message)
      ) {
        reject(new CliError(`cannot reach ${url}: ${networkError.message}`, 1, "UNREACHABLE"));
      } else {
        resolveConnect(undefined);
      }
    });
  });
}
