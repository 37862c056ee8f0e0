import { connect } from "node:net";
import { resolve } from "node:path";
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  type IoTClient,
  ListCACertificatesCommand,
  type ListCACertificatesCommandOutput,
  ListCertificatesCommand,
  type ListCertificatesCommandOutput,
  ListThingsCommand,
  type ListThingsCommandOutput,
} from "@aws-sdk/client-iot";
import type { Command } from "commander";
import type { Services } from "#adapters/services.ts";
import { deviceStatuses } from "#core/registry/model.ts";
import { isLocalStackUp, readEndpointsFile } from "#local/endpoints-file.ts";
import { LOCAL_METRICS_PATH, type MetricsSnapshot } from "#local/local-metrics.ts";
import { CliError } from "../cli-error.ts";
import {
  cliIotClient,
  cliServices,
  DEFAULT_ENDPOINTS_FILE,
  localTarget,
  resolveTarget,
  type Target,
  type TargetOptions,
  withTargetOptions,
} from "../wiring.ts";

type Health = "ok" | `down: ${string}`;

/** What `onramp status` reports. */
export type StackStatus = {
  target: "local" | "aws";
  endpointsFile?: string;
  endpoints: Record<string, string>;
  rootCa?: string;
  inMemory?: boolean;
  pid?: number;
  health: Record<string, Health>;
  counts?: {
    products: number;
    devices: Record<string, number>;
    things: number;
    certificates: Record<string, number>;
    caCertificates: number;
  };
  /** The local stack's counters since it started (GET /_onramp/metrics); on AWS see the dashboard. */
  metrics?: MetricsSnapshot;
};

/** `onramp status` */
export function registerStatusCommand(program: Command): void {
  withTargetOptions(
    program
      .command("status")
      .description(
        "Where the stack listens, whether each part answers, and what it holds (products, devices by status, things, certificates, CAs)",
      )
      .option("--json", "print JSON"),
  ).action(async (options: TargetOptions & { json?: boolean }) => {
    const status = await stackStatus(options);
    if (options.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
    else printStatus(status);
    if (Object.values(status.health).some((h) => h !== "ok")) process.exitCode = 1;
  });
}

async function stackStatus(options: TargetOptions): Promise<StackStatus> {
  if (options.aws || process.env.ONRAMP_TARGET === "aws") {
    const target = await resolveTarget(options);
    const iot = cliIotClient(target);
    const health: Record<string, Health> = {};
    try {
      // The deployed API has no /health route: any HTTP answer means it is reachable.
      if (target.apiUrl) health.api = await probe(() => answers(target.apiUrl ?? ""));
      health.awsIot = await probe(() => iot.send(new ListThingsCommand({ maxResults: 1 })));
      return {
        target: "aws",
        endpoints: { api: target.apiUrl ?? "-", region: target.region },
        health,
        ...(Object.values(health).every((h) => h === "ok") ? { counts: await counts(target, iot) } : {}),
      };
    } finally {
      iot.destroy();
    }
  }
  const file = resolve(options.endpoints ?? DEFAULT_ENDPOINTS_FILE);
  const written = readEndpointsFile(file);
  const target = localTarget(options); // a missing or incomplete endpoints file is a CliError
  if (!(await isLocalStackUp(target.apiUrl ?? ""))) {
    throw new CliError(
      `no local stack is running at ${target.apiUrl} (${file} is left from a stack that stopped): start it with \`npm start\`.`,
      1,
      "NO_LOCAL_STACK",
    );
  }
  const iot = cliIotClient(target);
  const dynamo = new DynamoDBClient({
    region: target.region,
    endpoint: target.dynamodbEndpoint ?? "",
    ...(target.credentials ? { credentials: target.credentials } : {}),
    maxAttempts: 1,
  });
  try {
    const mqtt = typeof written?.mqtt === "string" ? written.mqtt : "";
    const health: Record<string, Health> = {
      api: await probe(() => fetchOk(target.apiUrl ?? "")),
      awsEndpoint: await probe(() => iot.send(new ListThingsCommand({ maxResults: 1 }))),
      dynamodb: await probe(() => dynamo.send(new DescribeTableCommand({ TableName: target.tableName }))),
      mqtt: await probe(() => tcpConnect(mqtt)),
    };
    return {
      target: "local",
      endpointsFile: file,
      endpoints: {
        api: target.apiUrl ?? "",
        aws: target.awsEndpoint ?? "",
        dynamodb: target.dynamodbEndpoint ?? "",
        mqtt,
        region: target.region,
      },
      ...(typeof written?.rootCa === "string" ? { rootCa: written.rootCa } : {}),
      ...(typeof written?.inMemory === "boolean" ? { inMemory: written.inMemory } : {}),
      ...(typeof written?.pid === "number" ? { pid: written.pid } : {}),
      health,
      ...(Object.values(health).every((h) => h === "ok")
        ? { counts: await counts(target, iot), metrics: await localMetrics(target.apiUrl ?? "") }
        : {}),
    };
  } finally {
    iot.destroy();
    dynamo.destroy();
  }
}

async function counts(target: Target, iot: IoTClient): Promise<NonNullable<StackStatus["counts"]>> {
  const services = cliServices(target);
  try {
    const products = await services.registry.listProducts();
    const devices = Object.fromEntries(deviceStatuses.map((s) => [s, 0])) as Record<string, number>;
    for (const product of products) await countDevices(services, product.productKey, devices);
    let things = 0;
    let nextToken: string | undefined;
    do {
      const page: ListThingsCommandOutput = await iot.send(
        new ListThingsCommand({ maxResults: 250, nextToken }),
      );
      things += page.things?.length ?? 0;
      nextToken = page.nextToken;
    } while (nextToken);
    const certificates: Record<string, number> = {};
    let marker: string | undefined;
    do {
      const page: ListCertificatesCommandOutput = await iot.send(
        new ListCertificatesCommand({ pageSize: 250, marker }),
      );
      for (const c of page.certificates ?? []) {
        const status = c.status ?? "UNKNOWN";
        certificates[status] = (certificates[status] ?? 0) + 1;
      }
      marker = page.nextMarker;
    } while (marker);
    let caCertificates = 0;
    marker = undefined;
    do {
      const page: ListCACertificatesCommandOutput = await iot.send(
        new ListCACertificatesCommand({ pageSize: 250, marker }),
      );
      caCertificates += page.certificates?.length ?? 0;
      marker = page.nextMarker;
    } while (marker);
    return { products: products.length, devices, things, certificates, caCertificates };
  } finally {
    services.close();
  }
}

async function countDevices(services: Services, productKey: string, into: Record<string, number>) {
  let cursor: string | undefined;
  do {
    const page: { devices: { status: string }[]; cursor?: string } = await services.registry.listDevices(
      productKey,
      {
        limit: 500,
        ...(cursor ? { cursor } : {}),
      },
    );
    for (const d of page.devices) into[d.status] = (into[d.status] ?? 0) + 1;
    cursor = page.cursor;
  } while (cursor);
}

async function localMetrics(apiUrl: string): Promise<MetricsSnapshot> {
  const response = await fetch(new URL(LOCAL_METRICS_PATH, apiUrl), { signal: AbortSignal.timeout(3000) });
  if (!response.ok) throw new Error(`GET ${LOCAL_METRICS_PATH} answered ${response.status}`);
  return (await response.json()) as MetricsSnapshot;
}

async function probe(check: () => Promise<unknown>): Promise<Health> {
  try {
    await check();
    return "ok";
  } catch (error) {
    const message = error instanceof Error ? error.message || error.name : String(error);
    return `down: ${message}`;
  }
}

async function fetchOk(apiUrl: string): Promise<void> {
  if (!(await isLocalStackUp(apiUrl, 3000))) throw new Error(`GET ${apiUrl}/health failed`);
}

async function answers(url: string): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  await response.body?.cancel();
}

/** Opens a TCP connection to the MQTT endpoint's port and closes it (no TLS handshake, no CONNECT). */
function tcpConnect(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((done, fail) => {
    const socket = connect({ host: hostname, port: Number(port) || 8883, timeout: 2000 });
    socket.once("connect", () => {
      socket.destroy();
      done();
    });
    socket.once("timeout", () => {
      socket.destroy();
      fail(new Error("no answer in 2 s"));
    });
    socket.once("error", fail);
  });
}

function printStatus(status: StackStatus): void {
  const lines: string[] = [];
  lines.push(
    `${status.target} stack${status.inMemory ? " (in memory)" : ""}${status.pid ? `, pid ${status.pid}` : ""}`,
  );
  if (status.endpointsFile) lines.push(`  endpoints file  ${status.endpointsFile}`);
  for (const [name, url] of Object.entries(status.endpoints)) {
    const health = status.health[name === "aws" ? "awsEndpoint" : name];
    lines.push(`  ${name.padEnd(14)}  ${url}${health ? `   ${health}` : ""}`);
  }
  if (status.rootCa) lines.push(`  root CA         ${status.rootCa}`);
  if (status.counts) {
    const c = status.counts;
    const byKey = (r: Record<string, number>) =>
      Object.entries(r)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ") || "none";
    lines.push(
      `  products        ${c.products}`,
      `  devices         ${byKey(c.devices)}`,
      `  things          ${c.things}`,
      `  certificates    ${byKey(c.certificates)}`,
      `  CA certificates ${c.caCertificates}`,
    );
  }
  if (status.metrics) {
    // One line per metric: its counts by dimensions (e.g. "Vends  CREATED 3, INVALID_SIGNATURE 1").
    const byName: Record<string, string[]> = {};
    for (const c of status.metrics.counters) {
      const label = Object.values(c.dimensions).join(" ") || c.service;
      byName[c.name] = [...(byName[c.name] ?? []), `${label} ${c.value}`];
    }
    lines.push(`  counters since ${status.metrics.since}${Object.keys(byName).length ? "" : ": none yet"}`);
    for (const [name, values] of Object.entries(byName))
      lines.push(`    ${name.padEnd(20)} ${values.join(", ")}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
