import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { bindingTable } from "#adapters/binding-table.ts";
import { DynamoDbBindingStore } from "#adapters/dynamodb-bindings.ts";
import type { BindingConfig } from "#core/binding/model.ts";
import { defaultBindingConfig } from "#core/binding/model.ts";
import type { BindingPublisher, BindingRegistry } from "#core/binding/ports.ts";
import type { Logger } from "#core/logger.ts";
import type { Metrics } from "#core/metrics.ts";
import { BINDING_ROUTES, makeBindingApiHandler } from "#handlers/binding-api.ts";
import { makeBindingReportHandler } from "#handlers/binding-report.ts";
import type { Route } from "./api-gateway.ts";
import { ensureTable } from "./dynamodb.ts";
import { JWKS_PATH, jwtVerifier, LocalJwtIssuer } from "./jwt-issuer.ts";

export const DEFAULT_BINDING_TABLE = "onramp-bindings";
/** The phone API's OpenAPI document, served as written at {@link PHONE_API_SPEC_ROUTE}. */
export const PHONE_API_SPEC_PATH = fileURLToPath(new URL("../phone-api.yaml", import.meta.url));
export const PHONE_API_SPEC_ROUTE = "/phone-api.yaml";

/** Creates the binding table in dynalite unless it exists (a data folder from an earlier start); returns once it is ACTIVE. */
export async function ensureBindingTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await ensureTable(client, tableName, bindingTable);
}

export type LocalBindingOptions = {
  documentClient: DynamoDBDocumentClient;
  tableName: string;
  registry: BindingRegistry;
  logger: Logger;
  apiMetrics: Metrics;
  reportMetrics: Metrics;
  /** The data plane's Publish (the local MQTT endpoint, which starts later). */
  publisher: BindingPublisher;
  clock?: () => number;
  config?: Partial<BindingConfig>;
};

/**
 * The binding side of the local stack: the store on dynalite, the binding-report rule target,
 * the phone API routes (behind the JWT authorizer), its contract (`GET /phone-api.yaml`, read
 * on each request like `/openapi.yaml`) and the JWKS route. The issuer is made once
 * the API server's URL is known (`issuerReady`).
 */
export function localBinding(options: LocalBindingOptions) {
  const store = new DynamoDbBindingStore(options.documentClient, options.tableName);
  const deps = {
    store,
    registry: options.registry,
    logger: options.logger,
    config: { ...defaultBindingConfig, ...options.config },
    ...(options.clock ? { clock: options.clock } : {}),
  };
  const report = makeBindingReportHandler({
    ...deps,
    publisher: options.publisher,
    metrics: options.reportMetrics,
  });
  const api = makeBindingApiHandler({ ...deps, metrics: options.apiMetrics });
  let issuer: LocalJwtIssuer | undefined;
  let verify: ((token: string) => Promise<Record<string, unknown> | undefined>) | undefined;
  const routes: Route[] = [
    ...Object.values(BINDING_ROUTES).map((r) => ({
      method: r.method,
      path: r.path,
      handler: api,
      auth: "jwt" as const,
    })),
    {
      method: "GET",
      path: JWKS_PATH,
      handler: async () => ({
        statusCode: issuer ? 200 : 503,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(issuer ? issuer.jwks() : { message: "starting" }),
      }),
    },
    {
      method: "GET",
      path: PHONE_API_SPEC_ROUTE,
      handler: async () => ({
        statusCode: 200,
        headers: { "content-type": "application/yaml" },
        body: readFileSync(PHONE_API_SPEC_PATH, "utf8"),
      }),
    },
  ];
  return {
    store,
    report,
    routes,
    verifyJwt: async (token: string) => (verify ? verify(token) : undefined),
    /** Makes (or loads) the issuer for the API server's URL. */
    async startIssuer(issuerUrl: string, dataDir: string | undefined): Promise<LocalJwtIssuer> {
      issuer = await LocalJwtIssuer.create({ issuer: issuerUrl, ...(dataDir ? { dataDir } : {}) });
      const current = issuer;
      verify = jwtVerifier({
        issuer: issuerUrl,
        jwks: () => current.jwks(),
        ...(options.clock ? { clock: options.clock } : {}),
      });
      return issuer;
    },
  };
}
