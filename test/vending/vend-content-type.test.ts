import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { buildVendBody } from "#cli/device/vend-client.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

/**
 * POST /v1/certificates over real HTTP with raw headers (node:http, so names, case and repeats
 * reach the local API Gateway exactly as written). Returns status and parsed body.
 */
function post(
  apiUrl: string,
  headers: Record<string, string | string[]>,
  body: string,
): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    const url = new URL("/v1/certificates", apiUrl);
    const req = request(url, { method: "POST", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("POST /v1/certificates accepts only Content-Type: application/json", () => {
  let stack: Stack;
  let product: Awaited<ReturnType<typeof seedProduct>>;
  const serials = Array.from({ length: 8 }, (_, i) => `CT-${i}`);

  before(async () => {
    stack = await startTestStack();
    product = await seedProduct(stack.services, { productKey: "ctype", name: "Content types" }, serials);
  });
  after(() => stack.stop());

  /** A correctly signed body with an openssl CSR: only the media type can make it fail. */
  const signedBody = (serial: string) =>
    JSON.stringify(
      buildVendBody({
        serialNumber: serial,
        productKey: "ctype",
        secret: product.secretFor(serial),
        keyMode: "csr",
        csr: opensslCsr(serial).csrPem,
      }),
    );

  const refused: [string, Record<string, string | string[]>][] = [
    ["text/plain", { "content-type": "text/plain" }],
    ["no Content-Type", {}],
    ["application/x-www-form-urlencoded", { "Content-Type": "application/x-www-form-urlencoded" }],
    ["application/jsonp", { "content-type": "application/jsonp" }],
    ["application/json-patch+json", { "content-type": "application/json-patch+json" }],
    ["a charset other than UTF-8", { "content-type": "application/json; charset=utf-16" }],
    ["two different Content-Type headers", { "content-type": ["application/json", "text/plain"] }],
  ];
  for (const [name, headers] of refused) {
    it(`refuses ${name} with 415 UNSUPPORTED_MEDIA_TYPE, before looking at the body`, async () => {
      const res = await post(stack.endpoints.api, headers, signedBody(serials[0]!));
      assert.equal(res.status, 415, JSON.stringify(res.body));
      assert.equal(res.body.error?.code, "UNSUPPORTED_MEDIA_TYPE");
      assert.match(res.body.error?.message ?? "", /application\/json/);
    });
  }

  const accepted: [string, string, Record<string, string>][] = [
    ["application/json", "CT-1", { "content-type": "application/json" }],
    [
      "Content-Type: Application/JSON; charset=UTF-8",
      "CT-2",
      { "Content-Type": "Application/JSON; charset=UTF-8" },
    ],
    [
      'CONTENT-TYPE: application/json;charset="utf-8"',
      "CT-3",
      { "CONTENT-TYPE": 'application/json;charset="utf-8"' },
    ],
    ["a parameter other than charset", "CT-4", { "content-type": "application/json; profile=onramp" }],
  ];
  for (const [name, serial, headers] of accepted) {
    it(`accepts ${name}`, async () => {
      const res = await post(stack.endpoints.api, headers, signedBody(serial));
      assert.equal(res.status, 201, JSON.stringify(res.body));
    });
  }

  it("checks the media type before the size limit", async () => {
    const res = await post(stack.endpoints.api, { "content-type": "text/plain" }, "x".repeat(64 * 1024));
    assert.equal(res.status, 415);
    const json = await post(
      stack.endpoints.api,
      { "content-type": "application/json" },
      "x".repeat(64 * 1024),
    );
    assert.equal(json.status, 413);
  });
});
