import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import { Ajv, type ValidateFunction } from "ajv";
import type { MqttClient } from "mqtt";
import * as z from "zod/mini";
import { PhoneApi, PhoneApiError } from "#cli/simulators/phone-api.ts";
import { productKeySchema, serialNumberSchema } from "#core/registry/model.ts";
import { BINDING_ROUTES, bindRequestSchema, tokenRequestSchema } from "#handlers/binding-api.ts";
import { PHONE_API_SPEC_PATH, PHONE_API_SPEC_ROUTE } from "#local/binding-wiring.ts";
import { LocalJwtIssuer } from "#local/jwt-issuer.ts";
import type { LocalStack } from "#local/stack.ts";
import { endClient, nextMessage, subscribe } from "#test/local/mqtt/mqtt-device.ts";
import { recordingLogger } from "#test/local/mqtt/recording-logger.ts";
import { seedBindingProduct, startBindingStack } from "#test/support/local-stack.ts";
import { apiRequest, operatorUser, phoneUsers } from "#test/support/phone-users.ts";
import { connectAliyunDevice } from "#test/support/secret-login-mqtt.ts";

/**
 * phone-api.yaml is the phone API's contract: a valid OpenAPI 3.0 document (swagger-parser checks
 * it against the specification's schema) whose routes are exactly the handler's BINDING_ROUTES and
 * whose request bodies and path parameters are the handler's zod schemas. What the local stack
 * really answers (the real handler behind the local API gateway and its JWT authorizer, tokens
 * reported by real MQTT devices, a real dynalite behind a fault proxy) must be in it: every status
 * documented for its route, every JSON body valid (ajv) against the documented schema, every error
 * code named in the status's description, Retry-After where documented. The requests the CLI's
 * phone client (cli/simulators/phone-api.ts) sends, recorded by a proxy, are valid against it too.
 */

type Schema = Record<string, unknown>;
type Response = {
  description: string;
  headers?: Record<string, { required?: boolean; schema: Schema }>;
  content?: Record<string, { schema: Schema }>;
};
type Parameter = {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required?: boolean;
  schema: Schema;
};
type Operation = {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<string, Response>;
  security?: unknown;
};
type Document = {
  paths: Record<string, Record<string, Operation>>;
  security: Record<string, string[]>[];
  components: { securitySchemes: Record<string, Record<string, unknown>> };
};
type Compiled = {
  method: string;
  path: string;
  pattern: RegExp;
  names: string[];
  op: Operation;
  body?: ValidateFunction;
  pathParams: ValidateFunction;
  query: ValidateFunction;
  responses: Map<string, ValidateFunction>;
};

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const TOKEN_PATTERN = "^[0-9A-F]{32}$";
const MAX_FAILED = 6;
const newToken = () => randomBytes(16).toString("hex").toUpperCase();
/** An OpenAPI schema without its prose (descriptions), to compare with the handler's zod schemas. */
const withoutProse = (schema: unknown): unknown =>
  JSON.parse(JSON.stringify(schema, (key, value) => (key === "description" ? undefined : value)));
const zodInput = (schema: z.ZodMiniType) => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { target: "openapi-3.0", io: "input" });
  return rest;
};

describe("phone-api.yaml (the phone API's contract)", () => {
  let doc: Document;
  const operations: Compiled[] = [];
  /** `${operationId} ${status}` of every answer checked in this run. */
  const observed = new Set<string>();
  let stack: LocalStack;
  const logger = recordingLogger();
  const nowMs = Date.parse("2026-06-01T00:00:00Z");
  const clients: MqttClient[] = [];
  let product: Awaited<ReturnType<typeof seedBindingProduct>>;

  const users = {
    ...phoneUsers(["alice", "bob", "carol", "dave", "erin", "mallory"]),
    operator: operatorUser(),
  };
  const jwt = (user: keyof typeof users, atMs = nowMs) =>
    stack.binding.issuer.issueIdToken(users[user], { nowMs: atMs });

  before(async () => {
    // validate() throws on anything the OpenAPI 3.0 schema refuses and dereferences every $ref.
    doc = (await SwaggerParser.validate(PHONE_API_SPEC_PATH)) as unknown as Document;
    // OpenAPI 3.0 schema objects are JSON Schema with a few extra keywords (description, example).
    const ajv = new Ajv({ strict: false, allErrors: true });
    const coercing = new Ajv({ strict: false, allErrors: true, coerceTypes: true });
    for (const a of [ajv, coercing]) {
      a.addFormat("date-time", (s: string) =>
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s),
      );
    }
    const parametersSchema = (params: Parameter[]) => ({
      type: "object",
      additionalProperties: false,
      required: params.filter((p) => p.required).map((p) => p.name),
      properties: Object.fromEntries(params.map((p) => [p.name, p.schema])),
    });
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!HTTP_METHODS.includes(method)) continue;
        const names: string[] = [];
        const source = path.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
          names.push(name);
          return "([^/]+)";
        });
        const params = op.parameters ?? [];
        const body = op.requestBody?.content["application/json"]?.schema;
        operations.push({
          method: method.toUpperCase(),
          path,
          pattern: new RegExp(`^${source}$`),
          names,
          op,
          ...(body ? { body: ajv.compile(body) } : {}),
          pathParams: ajv.compile(parametersSchema(params.filter((p) => p.in === "path"))),
          // Query strings are strings on the wire: integers are compared as numbers.
          query: coercing.compile(parametersSchema(params.filter((p) => p.in === "query"))),
          responses: new Map(
            Object.entries(op.responses).flatMap(([status, response]) => {
              const schema = response.content?.["application/json"]?.schema;
              return schema ? [[status, ajv.compile(schema)] as const] : [];
            }),
          ),
        });
      }
    }

    stack = await startBindingStack({
      logger,
      dynamoFaultInjection: true,
      binding: {
        clock: () => nowMs,
        config: { maxFailedBinds: MAX_FAILED, failedBindWindowSeconds: 600 },
      },
    });
    product = await seedBindingProduct(
      stack.services,
      { productKey: "a1Contract", name: "Contract lamp", ownership: "single-owner", tokenTtlSeconds: 120 },
      ["d-01", "d-02", "d-03", "d-04"],
    );
  });

  after(async () => {
    await Promise.all(clients.map((c) => endClient(c)));
    await stack?.close();
  });

  function operationFor(method: string, pathname: string) {
    for (const o of operations) {
      const match = o.pattern.exec(pathname);
      if (!match || o.method !== method) continue;
      const params = Object.fromEntries(o.names.map((name, i) => [name, decodeURIComponent(match[i + 1]!)]));
      return { ...o, params };
    }
    assert.fail(`${method} ${pathname} is not in phone-api.yaml`);
  }

  /** Checks an answer against the contract; the parsed body (undefined when there is none). */
  function checkAnswer(method: string, url: URL, status: number, headers: Headers, text: string) {
    const o = operationFor(method, url.pathname);
    const documented = o.op.responses[String(status)];
    assert.ok(documented, `${o.op.operationId}: status ${status} is not documented (body ${text})`);
    observed.add(`${o.op.operationId} ${status}`);
    for (const [name, header] of Object.entries(documented.headers ?? {})) {
      if (header.required) assert.ok(headers.has(name), `${o.op.operationId} ${status}: ${name} header`);
    }
    if (headers.has("retry-after")) {
      assert.ok(
        documented.headers?.["Retry-After"],
        `${o.op.operationId} ${status}: Retry-After undocumented`,
      );
      assert.match(headers.get("retry-after")!, /^[1-9][0-9]*$/);
    }
    if (!documented.content) {
      assert.equal(text, "", `${o.op.operationId} ${status} has no body`);
      return undefined;
    }
    assert.match(headers.get("content-type") ?? "", /^application\/json/);
    const json = JSON.parse(text) as { error?: { code: string } } & Record<string, unknown>;
    const validate = o.responses.get(String(status))!;
    assert.ok(
      validate(json),
      `${o.op.operationId} ${status} body ${text}: ${JSON.stringify(validate.errors)}`,
    );
    if (json.error) {
      assert.ok(
        documented.description.includes(json.error.code),
        `${o.op.operationId} ${status} ${json.error.code} is not named in "${documented.description}"`,
      );
    }
    return json;
  }

  /** Checks a request against the contract (as a client must send it). */
  function checkRequest(method: string, url: URL, headers: Record<string, string | undefined>, body: string) {
    const o = operationFor(method, url.pathname);
    const where = `${method} ${url.pathname}`;
    assert.match(headers.authorization ?? "", /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, `${where}: bearer ID token`);
    assert.ok(o.pathParams(o.params), `${where} path: ${JSON.stringify(o.pathParams.errors)}`);
    const query = Object.fromEntries(url.searchParams);
    assert.ok(o.query(query), `${where} query: ${JSON.stringify(o.query.errors)}`);
    if (!o.body) {
      assert.equal(body, "", `${where} sends no body`);
      return o.op.operationId;
    }
    assert.match(headers["content-type"] ?? "", /^application\/json/, `${where}: Content-Type`);
    assert.ok(o.body(JSON.parse(body)), `${where} body: ${JSON.stringify(o.body.errors)}`);
    return o.op.operationId;
  }

  /** Sends a request to the local stack and checks the answer; status and body. */
  async function call(
    method: string,
    path: string,
    options: { auth?: string; json?: unknown; raw?: string | Buffer; contentType?: string } = {},
  ) {
    const body = options.json === undefined ? options.raw : JSON.stringify(options.json);
    const contentType = options.contentType ?? (body === undefined ? undefined : "application/json");
    const res = await apiRequest(stack.endpoints.api, method, path, {
      auth: options.auth,
      body,
      contentType,
    });
    const json = checkAnswer(method, res.url, res.status, res.headers, res.text);
    return { status: res.status, json: (json ?? {}) as Record<string, unknown>, code: json?.error?.code };
  }
  const answer = (r: { status: number; code?: string | undefined }) =>
    r.code === undefined ? r.status : `${r.status} ${r.code}`;

  const devices = new Map<string, ReturnType<typeof connectDevice>>();
  /** A secret-born device on MQTT that reports binding tokens (thing.awss.enrollee.match). */
  function device(deviceName: string) {
    let d = devices.get(deviceName);
    if (!d) {
      d = connectDevice(deviceName);
      devices.set(deviceName, d);
    }
    return d;
  }
  async function connectDevice(deviceName: string) {
    const client = await connectAliyunDevice(stack, {
      productKey: "a1Contract",
      deviceName,
      deviceSecret: product.secretFor(deviceName),
    });
    clients.push(client);
    const topic = `/sys/a1Contract/${deviceName}/thing/awss/enrollee/match`;
    assert.deepEqual(await subscribe(client, `${topic}_reply`), [1]);
    let id = 0;
    return {
      async report(token: string): Promise<number> {
        const reply = nextMessage(client, `${topic}_reply`, 10_000);
        const params = { token };
        client.publish(
          topic,
          JSON.stringify({ id: String(++id), version: "1.0", method: "thing.awss.enrollee.match", params }),
          { qos: 1 },
        );
        const message = await reply;
        assert.ok(message, `a match_reply for ${deviceName}`);
        return (JSON.parse(message.payload) as { code: number }).code;
      },
    };
  }

  it("is a valid OpenAPI 3.0.3 document: bearer ID tokens on every route, JSON bodies, no token in a path or query", () => {
    assert.deepEqual(doc.components.securitySchemes.idToken, {
      type: "http",
      scheme: "bearer",
      bearerFormat: "JWT",
      description: doc.components.securitySchemes.idToken?.description,
    });
    assert.deepEqual(doc.security, [{ idToken: [] }]);
    for (const { op } of operations) {
      assert.equal(op.security, undefined, `${op.operationId} keeps the document's security`);
      assert.ok(op.responses["401"], `${op.operationId} documents 401`);
      for (const [status, response] of Object.entries(op.responses)) {
        const where = `${op.operationId} ${status}`;
        assert.deepEqual(
          Object.keys(response).filter((k) => !["description", "headers", "content"].includes(k)),
          [],
          where,
        );
        if (status === "204") assert.equal(response.content, undefined, where);
        else assert.deepEqual(Object.keys(response.content ?? {}), ["application/json"], where);
        if (status === "429" || status === "503")
          assert.equal(response.headers?.["Retry-After"]?.required, true);
      }
      for (const p of op.parameters ?? []) {
        assert.notEqual(p.name.toLowerCase(), "token", `${op.operationId}: a token parameter`);
        assert.notEqual(p.schema.pattern, TOKEN_PATTERN, `${op.operationId}: ${p.name} looks like a token`);
        assert.ok(["path", "query"].includes(p.in), `${op.operationId}: ${p.name} in ${p.in}`);
      }
      if (op.requestBody) {
        assert.equal(op.requestBody.required, true);
        assert.deepEqual(Object.keys(op.requestBody.content), ["application/json"]);
      }
    }
  });

  it("documents exactly the handler's routes (BINDING_ROUTES), operationIds as the route names", () => {
    const documented = Object.fromEntries(operations.map((o) => [o.op.operationId, `${o.method} ${o.path}`]));
    const handler = Object.fromEntries(
      Object.entries(BINDING_ROUTES).map(([name, r]) => [name, `${r.method} ${r.path}`]),
    );
    assert.deepEqual(Object.values(documented).sort(), Object.values(handler).sort(), "the same routes");
    assert.deepEqual(documented, handler, "named as in BINDING_ROUTES (the CDK's operation names)");
    assert.equal(operations.length, Object.keys(BINDING_ROUTES).length, "no route documented twice");
  });

  it("request bodies and path parameters are the handler's zod schemas", () => {
    const body = (name: keyof typeof BINDING_ROUTES) =>
      withoutProse(
        operations.find((o) => o.op.operationId === name)?.op.requestBody?.content["application/json"]
          ?.schema,
      );
    assert.deepEqual(body("bind"), zodInput(bindRequestSchema));
    assert.deepEqual(body("registerToken"), zodInput(tokenRequestSchema));
    assert.deepEqual(body("tokenStatus"), zodInput(tokenRequestSchema));
    for (const o of operations) {
      for (const p of (o.op.parameters ?? []).filter((q) => q.in === "path")) {
        const expected = p.name === "productKey" ? productKeySchema : serialNumberSchema;
        assert.equal(p.name === "productKey" || p.name === "deviceName", true, p.name);
        assert.deepEqual(withoutProse(p.schema), zodInput(expected), `${o.op.operationId} ${p.name}`);
      }
    }
  });

  it("POST /v1/bindings: 201, 200 (retry), 403 BINDING_REFUSED, 409 DEVICE_ALREADY_BOUND, 400, 413, 415, 401", async () => {
    const d1 = await device("d-01");
    const [t1, t2] = [newToken(), newToken()];
    assert.equal(await d1.report(t1), 200);
    const bind = async (user: keyof typeof users, token: string, deviceName = "d-01") =>
      answer(
        await call("POST", "/v1/bindings", {
          auth: await jwt(user),
          json: { productKey: "a1Contract", deviceName, token },
        }),
      );
    assert.equal(await bind("alice", t1), 201);
    assert.equal(await bind("alice", t1), 200);
    assert.equal(await bind("bob", t1), "403 BINDING_REFUSED");
    assert.equal(await bind("bob", newToken(), "NO-SUCH-DEVICE"), "403 BINDING_REFUSED");
    assert.equal(await d1.report(t2), 200);
    assert.equal(await bind("bob", t2), "409 DEVICE_ALREADY_BOUND");

    const auth = await jwt("alice");
    const post = async (options: Parameters<typeof call>[2]) =>
      answer(await call("POST", "/v1/bindings", { auth, ...options }));
    assert.equal(
      await post({ json: { productKey: "a1Contract", deviceName: "d-01" } }),
      "400 INVALID_REQUEST",
    );
    assert.equal(
      await post({ json: { productKey: "a1Contract", deviceName: "d-01", token: t1.toLowerCase() } }),
      "400 INVALID_REQUEST",
    );
    assert.equal(await post({ raw: "{not json" }), "400 INVALID_REQUEST");
    assert.equal(
      await post({
        json: { productKey: "a1Contract", deviceName: "d-01", token: t1, pad: "x".repeat(2000) },
      }),
      "413 PAYLOAD_TOO_LARGE",
    );
    assert.equal(
      await post({ raw: JSON.stringify({ token: t1 }), contentType: "text/plain" }),
      "415 UNSUPPORTED_MEDIA_TYPE",
    );
    assert.equal(
      await post({ raw: JSON.stringify({ token: t1 }), contentType: "application/json; charset=latin1" }),
      "415 UNSUPPORTED_MEDIA_TYPE",
    );
  });

  it("path 3: POST /v1/binding-tokens 202, 201, 200, 403, 409; POST /v1/binding-tokens/status 200 pending and bound, 403, 409", async () => {
    const register = async (user: keyof typeof users, token: string) =>
      call("POST", "/v1/binding-tokens", { auth: await jwt(user), json: { token } });
    const status = async (user: keyof typeof users, token: string) =>
      call("POST", "/v1/binding-tokens/status", { auth: await jwt(user), json: { token } });
    const d2 = await device("d-02");
    const d3 = await device("d-03");

    const p1 = newToken();
    const pending = await register("carol", p1);
    assert.equal(answer(pending), 202);
    assert.equal(pending.json.status, "pending");
    assert.equal((await status("carol", p1)).json.status, "pending");
    assert.equal(answer(await status("erin", p1)), "403 BINDING_REFUSED");
    assert.equal(answer(await register("erin", p1)), "403 BINDING_REFUSED");
    assert.equal(answer(await status("erin", newToken())), "403 BINDING_REFUSED");
    assert.equal(await d2.report(p1), 200);
    const bound = await status("carol", p1);
    assert.equal(answer(bound), 200);
    assert.equal(bound.json.status, "bound");
    const again = await register("carol", p1);
    assert.equal(answer(again), 200);
    assert.deepEqual(again.json, bound.json, "the same binding");

    const p2 = newToken();
    assert.equal(await d3.report(p2), 200);
    const direct = await register("carol", p2);
    assert.equal(answer(direct), 201);
    assert.equal(direct.json.status, "bound");

    // d-02 is carol's (single-owner): erin's phone-made tokens cannot bind it, reported first or last.
    const p3 = newToken();
    assert.equal(await d2.report(p3), 200);
    assert.equal(answer(await register("erin", p3)), "409 DEVICE_ALREADY_BOUND");
    const p4 = newToken();
    assert.equal(answer(await register("erin", p4)), 202);
    assert.equal(await d2.report(p4), 200, "the device did its part; the bind is refused to the phone");
    assert.equal(answer(await status("erin", p4)), "409 DEVICE_ALREADY_BOUND");

    for (const path of ["/v1/binding-tokens", "/v1/binding-tokens/status"]) {
      const auth = await jwt("carol");
      const post = async (options: Parameters<typeof call>[2]) =>
        answer(await call("POST", path, { auth, ...options }));
      assert.equal(await post({ json: { token: "abc" } }), "400 INVALID_REQUEST");
      assert.equal(await post({ json: {} }), "400 INVALID_REQUEST");
      assert.equal(await post({ json: { token: p1, pad: "x".repeat(2000) } }), "413 PAYLOAD_TOO_LARGE");
      assert.equal(
        await post({ raw: JSON.stringify({ token: p1 }), contentType: "text/plain" }),
        "415 UNSUPPORTED_MEDIA_TYPE",
      );
    }
  });

  it("429 TOO_MANY_FAILED_BINDS with Retry-After on the three token routes", async () => {
    const auth = await jwt("mallory");
    const bind = async () =>
      answer(
        await call("POST", "/v1/bindings", {
          auth,
          json: { productKey: "a1Contract", deviceName: "d-04", token: newToken() },
        }),
      );
    for (let i = 0; i < MAX_FAILED; i++) assert.equal(await bind(), "403 BINDING_REFUSED");
    assert.equal(await bind(), "429 TOO_MANY_FAILED_BINDS");
    const unknown = { token: newToken() };
    assert.equal(
      answer(await call("POST", "/v1/binding-tokens/status", { auth, json: unknown })),
      "429 TOO_MANY_FAILED_BINDS",
    );
    // A token the device reported: registering it is a bind attempt.
    const reported = newToken();
    assert.equal(await (await device("d-04")).report(reported), 200);
    assert.equal(
      answer(await call("POST", "/v1/binding-tokens", { auth, json: { token: reported } })),
      "429 TOO_MANY_FAILED_BINDS",
    );
  });

  it("GET /v1/devices: pages (limit, nextToken); 400 for a bad limit or a nextToken it did not return", async () => {
    const auth = await jwt("carol");
    const all = await call("GET", "/v1/devices", { auth });
    assert.equal(all.status, 200);
    const names = (all.json.devices as { deviceName: string }[]).map((d) => d.deviceName);
    assert.deepEqual(names.sort(), ["d-02", "d-03"]);
    const seen: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const query = `limit=1${nextToken ? `&nextToken=${encodeURIComponent(nextToken)}` : ""}`;
      const page = await call("GET", `/v1/devices?${query}`, { auth });
      assert.equal(page.status, 200);
      seen.push(...(page.json.devices as { deviceName: string }[]).map((d) => d.deviceName));
      nextToken = page.json.nextToken as string | undefined;
      pages++;
    } while (nextToken && pages < 10);
    assert.deepEqual(seen.sort(), ["d-02", "d-03"]);
    assert.ok(pages >= 2, "a nextToken was given");
    for (const query of ["limit=0", "limit=101", "limit=ten", "nextToken=bm90LWEtY3Vyc29y"]) {
      assert.equal(answer(await call("GET", `/v1/devices?${query}`, { auth })), "400 INVALID_REQUEST", query);
    }
  });

  it("DELETE /v1/bindings/{pk}/{dn}: 204, 204 again (idempotent), 400; GET .../owners: 200 for operators, 403 FORBIDDEN, 400", async () => {
    const operator = await jwt("operator");
    const owners = await call("GET", "/v1/products/a1Contract/devices/d-01/owners", { auth: operator });
    assert.equal(owners.status, 200);
    assert.deepEqual(
      (owners.json.owners as { userId: string }[]).map((o) => o.userId),
      [users.alice.userId],
    );
    assert.deepEqual(
      (await call("GET", "/v1/products/a1Contract/devices/NOBODY/owners", { auth: operator })).json,
      { owners: [] },
    );
    assert.equal(
      answer(await call("GET", "/v1/products/a1Contract/devices/d-01/owners", { auth: await jwt("bob") })),
      "403 FORBIDDEN",
    );
    assert.equal(
      answer(await call("GET", "/v1/products/ab/devices/d-01/owners", { auth: operator })),
      "400 INVALID_REQUEST",
    );

    const alice = await jwt("alice");
    assert.equal(answer(await call("DELETE", "/v1/bindings/a1Contract/d-01", { auth: alice })), 204);
    assert.equal(answer(await call("DELETE", "/v1/bindings/a1Contract/d-01", { auth: alice })), 204);
    assert.equal(
      answer(await call("DELETE", "/v1/bindings/a1Contract/a%20b", { auth: alice })),
      "400 INVALID_REQUEST",
    );
    assert.equal(answer(await call("DELETE", "/v1/bindings/x/d-01", { auth: alice })), "400 INVALID_REQUEST");
  });

  it("401 on every route for a missing, forged, expired or unsigned ID token", async () => {
    const forger = await LocalJwtIssuer.create({ issuer: stack.endpoints.jwtIssuer });
    const forged = await forger.issueIdToken(users.alice, { nowMs });
    const expired = await jwt("alice", nowMs - 2 * 3600_000);
    const [header, payload] = (await jwt("alice")).split(".");
    const body = { productKey: "a1Contract", deviceName: "d-01", token: newToken() };
    for (const o of operations) {
      const path = o.path.replace("{productKey}", "a1Contract").replace("{deviceName}", "d-01");
      for (const auth of [undefined, forged, expired, `${header}.${payload}.`]) {
        const r = await call(o.method, path, {
          ...(auth ? { auth } : {}),
          ...(o.body ? { json: body } : {}),
        });
        assert.equal(r.status, 401, `${o.method} ${o.path}`);
      }
    }
  });

  it("a failing or throttling DynamoDB: 503 UNAVAILABLE and 429 THROTTLED with Retry-After on every route", async () => {
    const faults = stack.dynamoFaults!;
    const body = { productKey: "a1Contract", deviceName: "d-04", token: newToken() };
    const failures = [
      { errorType: "InternalServerError", status: 500, expected: "503 UNAVAILABLE" },
      { errorType: "ProvisionedThroughputExceededException", status: 400, expected: "429 THROTTLED" },
    ];
    for (const failure of failures) {
      for (const o of operations) {
        const path = o.path.replace("{productKey}", "a1Contract").replace("{deviceName}", "d-04");
        // The operator: the owners route refuses anyone else before it reads anything.
        const auth = await jwt("operator");
        for (const operation of ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"]) {
          faults.inject({ operation, errorType: failure.errorType, status: failure.status, times: 100 });
        }
        try {
          const r = await call(o.method, path, { auth, ...(o.body ? { json: body } : {}) });
          const logged = logger.entries.filter((e) => e.message === "dependency failure").at(-1);
          assert.equal(answer(r), failure.expected, `${o.method} ${o.path} (${JSON.stringify(logged)})`);
        } finally {
          faults.clear();
        }
      }
    }
  });

  it("the CLI's phone client sends requests valid against the document; its answers are documented", async () => {
    // dave has 51 devices (a shared product's bindings, written through the real store) so that
    // the client's devices() walks two pages (its page size is the API's default, 50).
    for (let i = 0; i < 51; i++) {
      await stack.binding.store.putBinding(
        {
          productKey: "a1Many",
          deviceName: `m-${String(i).padStart(3, "0")}`,
          userId: users.dave.userId,
          boundAt: new Date(nowMs).toISOString(),
        },
        "shared",
      );
    }
    const exchanges: {
      method: string;
      url: URL;
      headers: Record<string, string | undefined>;
      body: string;
      status: number;
      answerHeaders: Headers;
      answer: string;
    }[] = [];
    const proxy: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const url = new URL(req.url ?? "/", stack.endpoints.api);
        const headers = {
          authorization: req.headers.authorization,
          "content-type": req.headers["content-type"],
        };
        const upstream = await fetch(url, {
          method: req.method ?? "GET",
          headers: Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<
            string,
            string
          >,
          ...(body ? { body } : {}),
        });
        const text = await upstream.text();
        exchanges.push({
          method: req.method ?? "GET",
          url,
          headers,
          body,
          status: upstream.status,
          answerHeaders: upstream.headers,
          answer: text,
        });
        res.writeHead(upstream.status, Object.fromEntries(upstream.headers)).end(text);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const dave = new PhoneApi(base, await jwt("dave"));
      assert.equal((await dave.devices()).length, 51);
      const alice = new PhoneApi(base, await jwt("alice"));
      const token = newToken();
      assert.equal((await alice.registerToken(token)).status, "pending");
      assert.equal((await alice.tokenStatus(token)).status, "pending");
      const reported = newToken();
      assert.equal(await (await device("d-04")).report(reported), 200);
      const bound = await alice.bind({ productKey: "a1Contract", deviceName: "d-04", token: reported });
      assert.equal(bound.created, true);
      await alice.unbind("a1Contract", "d-04");
      await alice.unbind("a1Contract", "SN:0005");
      await assert.rejects(
        alice.bind({ productKey: "a1Contract", deviceName: "d-04", token: newToken() }),
        (e: unknown) => e instanceof PhoneApiError && e.status === 403 && e.code === "BINDING_REFUSED",
      );
    } finally {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
    const sent = new Set<string>();
    for (const e of exchanges) {
      sent.add(checkRequest(e.method, e.url, e.headers, e.body));
      checkAnswer(e.method, e.url, e.status, e.answerHeaders, e.answer);
    }
    assert.deepEqual([...sent].sort(), ["bind", "listDevices", "registerToken", "tokenStatus", "unbind"]);
    assert.ok(
      exchanges.some((e) => e.url.searchParams.has("nextToken")),
      "the client asked for a second page with nextToken",
    );
    assert.ok(
      exchanges.some((e) => e.url.pathname === "/v1/bindings/a1Contract/SN%3A0005"),
      "':' encoded",
    );
  });

  it("every documented status of every route was answered in this run (except WAF's, AWS only)", () => {
    const awsOnly = ["listDevices 403", "unbind 403"];
    const documented = operations.flatMap((o) =>
      Object.keys(o.op.responses).map((s) => `${o.op.operationId} ${s}`),
    );
    assert.deepEqual(
      documented.filter((d) => !observed.has(d)).sort(),
      awsOnly.sort(),
      "documented but never answered",
    );
  });

  it("is served by the stack as written (GET /phone-api.yaml)", async () => {
    const res = await fetch(new URL(PHONE_API_SPEC_ROUTE, stack.endpoints.api));
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /yaml/);
    assert.equal(await res.text(), readFileSync(PHONE_API_SPEC_PATH, "utf8"));
  });
});
