import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { opensslCsr } from "#test/core/pki/openssl.ts";
import { seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;

describe("POST /v1/certificates refuses ambiguous and weakly signed CSRs with a clear 400", () => {
  let stack: Stack;
  let product: Awaited<ReturnType<typeof seedProduct>>;

  before(async () => {
    stack = await startTestStack();
    product = await seedProduct(stack.services, { productKey: "csr-policy", name: "CSR policy" }, [
      "CP-1",
      "CP-2",
      "CP-3",
    ]);
  });
  after(() => stack.stop());

  const vend = (serial: string, csr: string) =>
    requestCertificate({
      apiUrl: stack.endpoints.api,
      serialNumber: serial,
      productKey: "csr-policy",
      secret: product.secretFor(serial),
      keyMode: "csr",
      csr,
    });

  it("refuses a CSR whose first CN is the serial but which carries a second CN", async () => {
    const res = await vend("CP-1", opensslCsr("ec:P-256", "/CN=CP-1/CN=admin").csrPem);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.deepEqual(res.body.error, {
      code: "INVALID_REQUEST",
      message: "The CSR subject has more than one CN (common name); it must have exactly one.",
    });
  });

  it("refuses a SHA-1-signed CSR, naming the hash", async () => {
    const res = await vend("CP-2", opensslCsr("ec:P-256", "/CN=CP-2", ["-sha1"]).csrPem);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    const error = res.body.error as { code: string; message: string };
    assert.equal(error.code, "INVALID_REQUEST");
    assert.match(error.message, /signed with SHA-1; sign it with SHA-256 or stronger/);
  });

  it("still vends for a single-CN SHA-256 CSR", async () => {
    const res = await vend("CP-3", opensslCsr("ec:P-256", "/CN=CP-3", ["-sha256"]).csrPem);
    assert.equal(res.status, 201, JSON.stringify(res.body));
  });
});
