import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { buildVendBody, requestCertificate } from "#cli/device/vend-client.ts";
import type { Logger } from "#core/logger.ts";
import { opensslCsr, seedProduct, startTestStack } from "#test/support/local-stack.ts";

type Entry = { level: string; message: string; fields: Record<string, unknown> };

/** A logger that keeps every entry (the stack's terminal, as a list). */
function recordingLogger(entries: Entry[]): Logger {
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      entries.push({ level, message, fields: Object.assign({}, ...extra) });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

describe("the local stack logs every refused vend request: status, code, serial, reason; never secrets", () => {
  const entries: Entry[] = [];
  let stack: Awaited<ReturnType<typeof startTestStack>>;
  let product: Awaited<ReturnType<typeof seedProduct>>;

  before(async () => {
    stack = await startTestStack({ logger: recordingLogger(entries) });
    product = await seedProduct(
      stack.services,
      { productKey: "logged", name: "Logged", reprovision: "never" },
      ["LOG-1", "LOG-2"],
    );
  });
  after(() => stack.stop());

  const rejections = () => entries.filter((e) => e.message === "vend rejected");
  const post = (body: string, contentType = "application/json") =>
    fetch(`${stack.endpoints.api}/v1/certificates`, {
      method: "POST",
      headers: { "content-type": contentType },
      body,
    });
  /** The rejection logged for the request `send` makes, with the answer's status and code. */
  async function rejectionOf(send: () => Promise<{ status: number; code: string }>) {
    const before = rejections().length;
    const answer = await send();
    const logged = rejections().slice(before);
    assert.equal(logged.length, 1, JSON.stringify(logged));
    const entry = logged[0]!;
    assert.equal(entry.level, "warn");
    assert.equal(entry.fields.status, answer.status);
    assert.equal(entry.fields.code, answer.code);
    assert.equal(typeof entry.fields.reason, "string");
    return { answer, fields: entry.fields, line: JSON.stringify(entry) };
  }
  const vendAnswer = async (call: Parameters<typeof requestCertificate>[0]) => {
    const res = await requestCertificate(call);
    return { status: res.status, code: String((res.body.error as { code?: string } | undefined)?.code) };
  };
  const call = (serial: string, secret: string, csr: string) => ({
    apiUrl: stack.endpoints.api,
    serialNumber: serial,
    productKey: "logged",
    secret,
    keyMode: "csr" as const,
    csr,
  });

  it("401 bad signature: code, serial and product key; not the signature or the secret", async () => {
    const { csrPem } = opensslCsr("LOG-1");
    const wrongSecret = "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE=";
    const { answer, fields, line } = await rejectionOf(() => vendAnswer(call("LOG-1", wrongSecret, csrPem)));
    assert.equal(answer.status, 401);
    assert.equal(fields.code, "BAD_SIGNATURE");
    assert.equal(fields.serialNumber, "LOG-1");
    assert.equal(fields.productKey, "logged");
    assert.ok(!line.includes(wrongSecret));
    assert.ok(!line.includes(product.secretFor("LOG-1")));
    assert.doesNotMatch(line, /signature"\s*:/);
    assert.ok(!line.includes("BEGIN CERTIFICATE REQUEST"));
  });

  it("403 unknown serial", async () => {
    const { csrPem } = opensslCsr("NOT-IMPORTED");
    const { answer, fields } = await rejectionOf(() =>
      vendAnswer(call("NOT-IMPORTED", product.secretFor("NOT-IMPORTED"), csrPem)),
    );
    assert.equal(answer.status, 403);
    assert.equal(fields.serialNumber, "NOT-IMPORTED");
  });

  it("409 already provisioned (a new key under the never policy)", async () => {
    const first = await requestCertificate(
      call("LOG-2", product.secretFor("LOG-2"), opensslCsr("LOG-2").csrPem),
    );
    assert.equal(first.status, 201);
    const { answer, fields } = await rejectionOf(() =>
      vendAnswer(call("LOG-2", product.secretFor("LOG-2"), opensslCsr("LOG-2").csrPem)),
    );
    assert.equal(answer.status, 409);
    assert.equal(fields.code, "ALREADY_PROVISIONED");
    assert.equal(fields.serialNumber, "LOG-2");
  });

  it("400 malformed body: the reason names the field; a malformed serial is not echoed", async () => {
    const body = buildVendBody({
      serialNumber: "LOG-1",
      productKey: "logged",
      secret: product.secretFor("LOG-1"),
      keyMode: "csr",
      csr: "x",
    });
    const { answer, fields, line } = await rejectionOf(async () => {
      const res = await post(
        JSON.stringify({ ...body, serialNumber: "bad serial\n<script>", timestamp: "soon" }),
      );
      return { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code };
    });
    assert.equal(answer.status, 400);
    assert.equal(fields.serialNumber, undefined);
    assert.ok(!line.includes("<script>"));
    assert.ok(!line.includes(String(body.signature)));
  });

  it("415 not application/json", async () => {
    const { answer } = await rejectionOf(async () => {
      const res = await post("serialNumber=LOG-1", "application/x-www-form-urlencoded");
      return { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code };
    });
    assert.equal(answer.status, 415);
  });
});
