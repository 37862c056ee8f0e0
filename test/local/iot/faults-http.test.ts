import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  CreateCertificateFromCsrCommand,
  CreateThingCommand,
  DescribeThingCommand,
  RegisterThingCommand,
} from "@aws-sdk/client-iot";
import { IotServiceError } from "#local/iot/index.ts";
import { opensslCsr } from "#test/core/pki/openssl.ts";
import { type EmulatorFixture, iotClient, sdkError, startEmulator } from "./emulator-fixture.ts";

describe("IoT emulator: fault injection and HTTP edge cases", () => {
  let f: EmulatorFixture;
  before(async () => {
    f = await startEmulator();
  });
  after(() => f.stop());

  it("makes the SDK throw an injected ThrottlingException, the given number of times", async () => {
    const { csrPem } = opensslCsr("ec:P-256", "/CN=fault");
    const create = () =>
      f.client.send(new CreateCertificateFromCsrCommand({ certificateSigningRequest: csrPem }));
    f.emulator.faults.resetCalls();
    f.emulator.faults.inject({
      operation: "CreateCertificateFromCsr",
      error: "ThrottlingException",
      times: 2,
    });
    await sdkError(create(), "ThrottlingException");
    await sdkError(create(), "ThrottlingException");
    await create();
    assert.equal(f.emulator.faults.calls("CreateCertificateFromCsr"), 3);
    assert.equal(f.emulator.state.listCertificates().length, 1, "failed calls create nothing");
  });

  it("lets the SDK's retries ride over a single injected fault", async () => {
    const retrying = iotClient(f.url, 3);
    try {
      f.emulator.faults.inject({ operation: "CreateThing", error: "ThrottlingException" });
      const before = f.emulator.faults.calls("CreateThing");
      await retrying.send(new CreateThingCommand({ thingName: "retried" }));
      assert.equal(f.emulator.faults.calls("CreateThing") - before, 2);
    } finally {
      retrying.destroy();
    }
  });

  it("uses the model's status unless one is given, and clears faults", async () => {
    f.emulator.faults.inject({ operation: "DescribeThing", error: "InternalFailureException" });
    const internal = await sdkError(
      f.client.send(new DescribeThingCommand({ thingName: "retried" })),
      "InternalFailureException",
    );
    assert.equal(internal.$metadata?.httpStatusCode, 500);
    f.emulator.faults.inject({
      operation: "DescribeThing",
      error: "ServiceUnavailableException",
      status: 503,
      times: 5,
    });
    const unavailable = await sdkError(
      f.client.send(new DescribeThingCommand({ thingName: "retried" })),
      "ServiceUnavailableException",
    );
    assert.equal(unavailable.$metadata?.httpStatusCode, 503);
    f.emulator.faults.clear();
    await f.client.send(new DescribeThingCommand({ thingName: "retried" }));
    assert.throws(
      () => f.emulator.faults.inject({ operation: "RegisterThng", error: "ThrottlingException" }),
      (error: unknown) =>
        error instanceof IotServiceError && /Unknown operation RegisterThng/.test(error.message),
    );
  });

  it("takes faults over HTTP: POST and DELETE /_emulator/faults", async () => {
    const post = await fetch(`${f.url}/_emulator/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ operation: "RegisterThing", error: "ThrottlingException" }),
    });
    assert.equal(post.status, 200);
    await sdkError(f.client.send(new RegisterThingCommand({ templateBody: "{}" })), "ThrottlingException");

    await fetch(`${f.url}/_emulator/faults`, {
      method: "POST",
      body: JSON.stringify({ operation: "*", error: "ThrottlingException", times: 3 }),
    });
    const listed = (await (await fetch(`${f.url}/_emulator/faults`)).json()) as {
      pending: unknown[];
      calls: Record<string, number>;
    };
    assert.equal(listed.pending.length, 1);
    assert.ok((listed.calls.RegisterThing ?? 0) >= 1);
    const cleared = await fetch(`${f.url}/_emulator/faults`, { method: "DELETE" });
    assert.equal(cleared.status, 200);
    await f.client.send(new DescribeThingCommand({ thingName: "retried" }));

    const bad = await fetch(`${f.url}/_emulator/faults`, {
      method: "POST",
      body: JSON.stringify({ operation: "RegisterThing" }),
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get("x-amzn-errortype"), "InvalidRequestException");
  });

  it("answers malformed input with InvalidRequestException, not a 500, and needs no SigV4", async () => {
    const malformed = await fetch(`${f.url}/things/raw-thing`, { method: "POST", body: "{not json" });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.headers.get("x-amzn-errortype"), "InvalidRequestException");
    assert.match(((await malformed.json()) as { message: string }).message, /JSON/);

    const wrongType = await fetch(`${f.url}/things/raw-thing`, {
      method: "POST",
      body: JSON.stringify({ attributePayload: { attributes: 5 } }),
    });
    assert.equal(wrongType.status, 400);

    const badPercent = await fetch(`${f.url}/things/%E0%A4%A`);
    assert.equal(badPercent.status, 400);

    const unsigned = await fetch(`${f.url}/things/raw-thing`, { method: "POST", body: "{}" });
    assert.equal(unsigned.status, 200);
    assert.equal(((await unsigned.json()) as { thingName: string }).thingName, "raw-thing");

    const unknown = await fetch(`${f.url}/no/such/route`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers.get("x-amzn-errortype"), "UnknownOperationException");

    const huge = await fetch(`${f.url}/things/raw-thing-2`, {
      method: "POST",
      body: "x".repeat(2 * 1024 * 1024),
    });
    assert.equal(huge.status, 400);
  });
});
