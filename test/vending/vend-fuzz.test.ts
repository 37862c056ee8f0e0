import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import fc from "fast-check";
import { buildVendBody } from "#cli/device/vend-client.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;
let secret: string;

before(async () => {
  stack = await startTestStack();
  secret = (
    await seedProduct(stack.services, { productKey: "fuzz", name: "Fuzz", authMode: "product-secret" }, [
      "FZ-1",
    ])
  ).productSecret;
});
after(() => stack.stop());

const post = async (body: string) => {
  const res = await fetch(`${stack.endpoints.api}/v1/certificates`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const json = (await res.json()) as { error?: { code?: string; message?: string } };
  return { status: res.status, json };
};

/** A valid signed body whose fields are then replaced by arbitrary JSON values. */
const mutatedBody = fc
  .record({
    field: fc.constantFrom(
      "serialNumber",
      "productKey",
      "timestamp",
      "nonce",
      "keyMode",
      "csr",
      "signature",
      "extra",
    ),
    value: fc.jsonValue(),
  })
  .map(({ field, value }) => {
    const body = buildVendBody({
      serialNumber: "FZ-1",
      productKey: "fuzz",
      secret,
      keyMode: "csr",
      csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    });
    return JSON.stringify({ ...body, [field]: value });
  });

const arbitraryBody = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  mutatedBody,
  fc.string({ unit: "binary", maxLength: 200 }),
);

it("never answers a malformed body with a 5xx (a few thousand bodies)", async () => {
  await fc.assert(
    fc.asyncProperty(arbitraryBody, async (body) => {
      const { status, json } = await post(body);
      assert.ok(status >= 400 && status < 500, `status ${status} for ${body.slice(0, 80)}`);
      assert.ok(json.error?.code && json.error.message, "an error body with code and message");
      assert.ok(!json.error.message.includes(secret), "never echoes the secret");
    }),
    { numRuns: 2500 },
  );
  assert.equal(
    (await stack.services.registry.getDevice("FZ-1"))?.status,
    "registered",
    "nothing half-written",
  );
});
