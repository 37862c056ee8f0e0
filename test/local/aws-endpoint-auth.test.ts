import assert from "node:assert/strict";
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  CreateThingCommand,
  DescribeThingCommand,
  IoTClient,
  ListThingsCommand,
  UpdateThingCommand,
} from "@aws-sdk/client-iot";
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { SignatureV4 } from "@smithy/signature-v4";
import { localRegion } from "#local/local-aws.ts";
import { startTestStack } from "#test/support/local-stack.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type Credentials = { accessKeyId: string; secretAccessKey: string };

/** SHA-256 for the smithy signer, from node:crypto (HMAC when given a key). */
class Sha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: unknown) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", secret as Uint8Array);
  }
  update(data: unknown): void {
    this.hash.update(data as Uint8Array);
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

/** The SDK error's name and HTTP status, or "ok". */
async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    return `${e.name} ${e.$metadata?.httpStatusCode}`;
  }
}

describe("local AWS endpoint: SigV4 with the stack's own key pair", () => {
  let stack: Stack;
  const clients: Array<{ destroy(): void }> = [];
  const iot = (credentials: Credentials, extra: { systemClockOffset?: number } = {}) => {
    const client = new IoTClient({
      endpoint: stack.endpoints.aws,
      region: localRegion,
      credentials,
      maxAttempts: 1,
      ...extra,
    });
    clients.push(client);
    return client;
  };
  const secrets = (credentials: Credentials) => {
    const client = new SecretsManagerClient({
      endpoint: stack.endpoints.aws,
      region: localRegion,
      credentials,
      maxAttempts: 1,
    });
    clients.push(client);
    return client;
  };

  before(async () => {
    stack = await startTestStack();
  });
  after(async () => {
    for (const client of clients) client.destroy();
    await stack?.stop();
  });

  it("gives every stack its own random key pair", async () => {
    const other = await startTestStack();
    try {
      assert.notEqual(other.credentials.accessKeyId, stack.credentials.accessKeyId);
      assert.notEqual(other.credentials.secretAccessKey, stack.credentials.secretAccessKey);
      assert.equal(stack.endpoints.accessKeyId, stack.credentials.accessKeyId);
    } finally {
      await other.stop();
    }
  });

  it("serves the real SDK signing with the stack's key pair (IoT paths and queries, Secrets Manager)", async () => {
    const client = iot(stack.credentials);
    const thingName = "auth-thing_1:a-b";
    await client.send(
      new CreateThingCommand({
        thingName,
        attributePayload: { attributes: { room: "hall way", n: "1+1=2" } },
      }),
    );
    await client.send(
      new UpdateThingCommand({
        thingName,
        attributePayload: { attributes: { note: "a/b?c&d" }, merge: true },
      }),
    );
    assert.equal((await client.send(new DescribeThingCommand({ thingName }))).thingName, thingName);
    const listed = await client.send(
      new ListThingsCommand({ attributeName: "room", attributeValue: "hall way", maxResults: 5 }),
    );
    assert.deepEqual(
      listed.things?.map((t) => t.thingName),
      [thingName],
    );

    const sm = secrets(stack.credentials);
    await sm.send(new CreateSecretCommand({ Name: "auth/test", SecretString: "s3cret" }));
    assert.equal(
      (await sm.send(new GetSecretValueCommand({ SecretId: "auth/test" }))).SecretString,
      "s3cret",
    );
  });

  it("refuses unsigned requests with 403 MissingAuthenticationTokenException (IoT and Secrets Manager)", async () => {
    const things = await fetch(`${stack.endpoints.aws}/things`);
    assert.equal(things.status, 403);
    assert.equal(things.headers.get("x-amzn-errortype"), "MissingAuthenticationTokenException");
    const secret = await fetch(stack.endpoints.aws, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "secretsmanager.GetSecretValue",
      },
      body: JSON.stringify({ SecretId: "onramp/registry-key" }),
    });
    assert.equal(secret.status, 403);
    const body = (await secret.json()) as { __type: string; SecretString?: string };
    assert.equal(body.__type, "MissingAuthenticationTokenException");
    assert.equal(body.SecretString, undefined);
    const faults = await fetch(`${stack.endpoints.aws}/_emulator/faults`);
    assert.equal(faults.status, 403, "the fault-injection API is behind the signature check too");
  });

  it("refuses a wrong secret (InvalidSignatureException) and an unknown key id (UnrecognizedClientException)", async () => {
    const wrongSecret = { ...stack.credentials, secretAccessKey: `${stack.credentials.secretAccessKey}x` };
    assert.equal(
      await outcome(iot(wrongSecret).send(new ListThingsCommand({}))),
      "InvalidSignatureException 403",
    );
    assert.equal(
      await outcome(
        secrets(wrongSecret).send(new GetSecretValueCommand({ SecretId: "onramp/registry-key" })),
      ),
      "InvalidSignatureException 403",
    );
    const unknownKey = {
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      secretAccessKey: stack.credentials.secretAccessKey,
    };
    assert.equal(
      await outcome(iot(unknownKey).send(new ListThingsCommand({}))),
      "UnrecognizedClientException 403",
    );
    assert.equal(
      await outcome(secrets(unknownKey).send(new GetSecretValueCommand({ SecretId: "onramp/registry-key" }))),
      "UnrecognizedClientException 403",
    );
  });

  it("refuses a signature dated outside the 15-minute window", async () => {
    const late = iot(stack.credentials, { systemClockOffset: -20 * 60 * 1000 });
    assert.equal(await outcome(late.send(new ListThingsCommand({}))), "InvalidSignatureException 403");
  });

  it("refuses a signed request whose body was changed after signing", async () => {
    const url = new URL(stack.endpoints.aws);
    const signer = new SignatureV4({
      credentials: stack.credentials,
      region: localRegion,
      service: "secretsmanager",
      sha256: Sha256,
    });
    const body = JSON.stringify({ SecretId: "auth/test" });
    const signed = await signer.sign({
      method: "POST",
      protocol: "http:",
      hostname: url.hostname,
      port: Number(url.port),
      path: "/",
      headers: {
        host: url.host,
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "secretsmanager.GetSecretValue",
      },
      body,
    });
    const send = (payload: string) =>
      fetch(stack.endpoints.aws, { method: "POST", headers: signed.headers, body: payload });
    const genuine = await send(body);
    assert.equal(genuine.status, 200, await genuine.clone().text());
    const tampered = await send(JSON.stringify({ SecretId: "onramp/registry-key" }));
    assert.equal(tampered.status, 403);
    assert.equal(tampered.headers.get("x-amzn-errortype"), "InvalidSignatureException");
  });
});
