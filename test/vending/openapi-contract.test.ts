import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import SwaggerParser from "@apidevtools/swagger-parser";
import { Ajv, type ValidateFunction } from "ajv";
import { buildVendBody } from "#cli/device/vend-client.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";

/**
 * openapi.yaml is the vending API's contract: it must be a valid OpenAPI 3.0 document (checked
 * with @apidevtools/swagger-parser against the specification's own schema), and what the local
 * stack's API really answers (the Lambda handler behind the API Gateway adapter) must be in it:
 * every status documented, bodies valid against the documented schemas, error codes named in the
 * status's description, and the requests the CLI sends valid against the request schema.
 */
const specPath = fileURLToPath(new URL("../../openapi.yaml", import.meta.url));

type Operation = {
  requestBody: { content: Record<string, { schema: object }> };
  responses: Record<
    string,
    { description: string; headers?: Record<string, unknown>; content?: Record<string, { schema: object }> }
  >;
};

describe("openapi.yaml", () => {
  let operation: Operation;
  let validateRequest: ValidateFunction;
  const validateResponse = new Map<string, ValidateFunction>();
  let stack: Awaited<ReturnType<typeof startTestStack>>;
  let product: Awaited<ReturnType<typeof seedProduct>>;

  before(async () => {
    // validate() throws on anything the OpenAPI 3.0 schema refuses (unknown keys included).
    const api = (await SwaggerParser.validate(specPath)) as unknown as {
      paths: Record<string, Record<string, Operation>>;
    };
    operation = api.paths["/v1/certificates"]!.post!;
    // OpenAPI 3.0 schema objects are JSON Schema with a few extra keywords (description, example).
    const ajv = new Ajv({ strict: false, allErrors: true });
    validateRequest = ajv.compile(operation.requestBody.content["application/json"]!.schema);
    for (const [status, response] of Object.entries(operation.responses)) {
      const schema = response.content?.["application/json"]?.schema;
      if (schema) validateResponse.set(status, ajv.compile(schema));
    }
    stack = await startTestStack();
    product = await seedProduct(
      stack.services,
      { productKey: "contract", name: "Contract", reprovision: "never" },
      ["C-1", "C-2", "C-3"],
    );
  });
  after(() => stack?.stop());

  it("is a valid OpenAPI 3.0 document whose responses hold only description, headers and content", () => {
    for (const [status, response] of Object.entries(operation.responses)) {
      assert.deepEqual(
        Object.keys(response).filter((k) => !["description", "headers", "content"].includes(k)),
        [],
        `response ${status}`,
      );
      assert.equal(typeof response.description, "string");
      assert.ok(response.content?.["application/json"], `response ${status} has a JSON body`);
    }
  });

  /** Sends `body` and checks the answer against the contract; returns status and body. */
  async function exchange(body: string, contentType = "application/json") {
    const res = await fetch(`${stack.endpoints.api}/v1/certificates`, {
      method: "POST",
      headers: { "content-type": contentType },
      body,
    });
    const text = await res.text();
    const status = String(res.status);
    const documented = operation.responses[status];
    assert.ok(documented, `status ${status} is not in openapi.yaml (body ${text})`);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const json = JSON.parse(text) as { error?: { code: string } };
    const validate = validateResponse.get(status)!;
    assert.ok(validate(json), `${status} body ${text}: ${JSON.stringify(validate.errors)}`);
    if (json.error) {
      assert.ok(
        documented.description.includes(json.error.code),
        `${status} ${json.error.code} is not named in the description "${documented.description}"`,
      );
    }
    if (res.headers.has("retry-after"))
      assert.ok(documented.headers?.["Retry-After"], `${status} Retry-After`);
    return { status: res.status, json };
  }

  const signed = (
    serial: string,
    overrides: Record<string, unknown> = {},
    csr = opensslCsr(serial).csrPem,
  ) => {
    const body = {
      ...buildVendBody({
        serialNumber: serial,
        productKey: "contract",
        secret: product.secretFor(serial),
        keyMode: "csr",
        csr,
      }),
      ...overrides,
    };
    return body;
  };

  it("201, then 200 for the same key, then 409 for a new key: bodies as documented; requests valid", async () => {
    const { csrPem } = opensslCsr("C-1");
    const first = signed("C-1", {}, csrPem);
    assert.ok(validateRequest(first), JSON.stringify(validateRequest.errors));
    assert.equal((await exchange(JSON.stringify(first))).status, 201);
    const again = signed("C-1", {}, csrPem);
    assert.equal((await exchange(JSON.stringify(again))).status, 200);
    const other = signed("C-1");
    assert.equal((await exchange(JSON.stringify(other))).status, 409);
  });

  it("400 (schema, CSR), 401 (signature, stale, nonce), 403, 413, 415: documented, with the codes named", async () => {
    const statuses: number[] = [];
    const send = async (body: string, contentType?: string) =>
      statuses.push((await exchange(body, contentType)).status);
    await send(JSON.stringify({ ...signed("C-2"), timestamp: "soon" }));
    await send("{not json");
    await send(JSON.stringify(signed("C-2", {}, opensslCsr("SOMEONE-ELSE").csrPem)));
    await send(JSON.stringify({ ...signed("C-2"), signature: "0".repeat(64) }));
    const stale = buildVendBody({
      serialNumber: "C-2",
      productKey: "contract",
      secret: product.secretFor("C-2"),
      keyMode: "csr",
      csr: opensslCsr("C-2").csrPem,
      timestamp: Date.now() - 3_600_000,
    });
    await send(JSON.stringify(stale));
    const once = signed("C-3");
    await send(JSON.stringify(once));
    await send(JSON.stringify(once)); // the same nonce again
    await send(JSON.stringify(signed("NOT-IMPORTED")));
    await send(JSON.stringify({ ...signed("C-2"), csr: "x".repeat(20_000) }));
    await send("serialNumber=C-2", "text/plain");
    assert.deepEqual(statuses, [400, 400, 400, 401, 401, 201, 401, 403, 413, 415]);
  });

  it("is served by the stack as written (GET /openapi.yaml)", async () => {
    const res = await fetch(`${stack.endpoints.api}/openapi.yaml`);
    assert.equal(res.status, 200);
    const { readFileSync } = await import("node:fs");
    assert.equal(await res.text(), readFileSync(specPath, "utf8"));
  });
});
