import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  DeletePolicyCommand,
  DeleteThingCommand,
  DescribeThingCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  GetPolicyCommand,
  ListAttachedPoliciesCommand,
  ListPrincipalThingsCommand,
  ListThingPrincipalsCommand,
  ListThingsCommand,
  UpdateThingCommand,
} from "@aws-sdk/client-iot";
import { opensslCsr } from "#test/core/pki/openssl.ts";
import { type EmulatorFixture, sdkError, startEmulator } from "./emulator-fixture.ts";

const DOCUMENT = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Action: "iot:Connect",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IoT policy variable, not a JS template
      Resource: "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}",
    },
  ],
});

describe("IoT emulator: things and policies", () => {
  let f: EmulatorFixture;
  let certificateArn: string;
  before(async () => {
    f = await startEmulator({ policies: { "seeded-policy": DOCUMENT } });
    const created = await f.client.send(
      new CreateCertificateFromCsrCommand({
        certificateSigningRequest: opensslCsr("ec:P-256", "/CN=tp").csrPem,
      }),
    );
    certificateArn = created.certificateArn!;
  });
  after(() => f.stop());

  it("CreateThing is idempotent for the same configuration and conflicts otherwise", async () => {
    const input = { thingName: "sensor-1", attributePayload: { attributes: { model: "x1", site: "b7" } } };
    const created = await f.client.send(new CreateThingCommand(input));
    assert.equal(created.thingArn, "arn:aws:iot:us-east-1:000000000000:thing/sensor-1");
    const again = await f.client.send(new CreateThingCommand(input));
    assert.equal(again.thingId, created.thingId);
    await sdkError(
      f.client.send(
        new CreateThingCommand({ thingName: "sensor-1", attributePayload: { attributes: { model: "x2" } } }),
      ),
      "ResourceAlreadyExistsException",
    );
    const described = await f.client.send(new DescribeThingCommand({ thingName: "sensor-1" }));
    assert.deepEqual(described.attributes, { model: "x1", site: "b7" });
    assert.equal(described.version, 1);
    assert.equal(described.defaultClientId, "sensor-1");
    await sdkError(
      f.client.send(new DescribeThingCommand({ thingName: "nope" })),
      "ResourceNotFoundException",
    );
    await sdkError(
      f.client.send(new CreateThingCommand({ thingName: "bad name!" })),
      "InvalidRequestException",
    );
  });

  it("UpdateThing merges or replaces attributes and checks the version", async () => {
    await f.client.send(
      new CreateThingCommand({ thingName: "upd", attributePayload: { attributes: { a: "1", b: "2" } } }),
    );
    await f.client.send(
      new UpdateThingCommand({
        thingName: "upd",
        attributePayload: { attributes: { b: "", c: "3" }, merge: true },
      }),
    );
    let described = await f.client.send(new DescribeThingCommand({ thingName: "upd" }));
    assert.deepEqual(described.attributes, { a: "1", c: "3" });
    assert.equal(described.version, 2);
    await sdkError(
      f.client.send(
        new UpdateThingCommand({
          thingName: "upd",
          expectedVersion: 1,
          attributePayload: { attributes: {} },
        }),
      ),
      "VersionConflictException",
    );
    await f.client.send(
      new UpdateThingCommand({ thingName: "upd", attributePayload: { attributes: { z: "9" } } }),
    );
    described = await f.client.send(new DescribeThingCommand({ thingName: "upd" }));
    assert.deepEqual(described.attributes, { z: "9" });
  });

  it("ListThings filters by attribute and pages", async () => {
    for (let i = 0; i < 5; i++) {
      await f.client.send(
        new CreateThingCommand({
          thingName: `list-${i}`,
          attributePayload: { attributes: { batch: i < 3 ? "A1" : "B1" } },
        }),
      );
    }
    const exact = await f.client.send(
      new ListThingsCommand({ attributeName: "batch", attributeValue: "A1" }),
    );
    assert.deepEqual(
      exact.things?.map((t) => t.thingName),
      ["list-0", "list-1", "list-2"],
    );
    const prefix = await f.client.send(
      new ListThingsCommand({ attributeName: "batch", attributeValue: "B", usePrefixAttributeValue: true }),
    );
    assert.deepEqual(
      prefix.things?.map((t) => t.thingName),
      ["list-3", "list-4"],
    );
    const names: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await f.client.send(
        new ListThingsCommand({ maxResults: 2, attributeName: "batch", ...(nextToken ? { nextToken } : {}) }),
      );
      names.push(...(page.things ?? []).map((t) => t.thingName!));
      nextToken = page.nextToken;
    } while (nextToken);
    assert.equal(names.length, 5);
  });

  it("attaches and detaches principals, and DeleteThing refuses a thing with principals", async () => {
    await f.client.send(new CreateThingCommand({ thingName: "owner" }));
    await f.client.send(new AttachThingPrincipalCommand({ thingName: "owner", principal: certificateArn }));
    await f.client.send(new AttachThingPrincipalCommand({ thingName: "owner", principal: certificateArn }));
    const principals = await f.client.send(new ListThingPrincipalsCommand({ thingName: "owner" }));
    assert.deepEqual(principals.principals, [certificateArn]);
    const things = await f.client.send(new ListPrincipalThingsCommand({ principal: certificateArn }));
    assert.deepEqual(things.things, ["owner"]);
    assert.deepEqual(f.emulator.state.principalThings(certificateArn), ["owner"]);

    await sdkError(f.client.send(new DeleteThingCommand({ thingName: "owner" })), "InvalidRequestException");
    await sdkError(
      f.client.send(
        new AttachThingPrincipalCommand({
          thingName: "owner",
          principal: `arn:aws:iot:us-east-1:000000000000:cert/${"1".repeat(64)}`,
        }),
      ),
      "ResourceNotFoundException",
    );
    await sdkError(
      f.client.send(new AttachThingPrincipalCommand({ thingName: "ghost", principal: certificateArn })),
      "ResourceNotFoundException",
    );

    await f.client.send(new DetachThingPrincipalCommand({ thingName: "owner", principal: certificateArn }));
    await f.client.send(new DeleteThingCommand({ thingName: "owner" }));
    await f.client.send(new DeleteThingCommand({ thingName: "owner" })); // gone already: still fine
    assert.equal(f.emulator.state.thing("owner"), undefined);
  });

  it("creates, reads, attaches, detaches and deletes policies", async () => {
    const created = await f.client.send(
      new CreatePolicyCommand({ policyName: "device", policyDocument: DOCUMENT }),
    );
    assert.equal(created.policyArn, "arn:aws:iot:us-east-1:000000000000:policy/device");
    assert.equal(created.policyVersionId, "1");
    await sdkError(
      f.client.send(new CreatePolicyCommand({ policyName: "device", policyDocument: DOCUMENT })),
      "ResourceAlreadyExistsException",
    );
    await sdkError(
      f.client.send(new CreatePolicyCommand({ policyName: "broken", policyDocument: "{nope" })),
      "MalformedPolicyException",
    );
    const read = await f.client.send(new GetPolicyCommand({ policyName: "device" }));
    assert.equal(read.policyDocument, DOCUMENT);
    assert.equal(read.defaultVersionId, "1");

    await f.client.send(new AttachPolicyCommand({ policyName: "device", target: certificateArn }));
    await f.client.send(new AttachPolicyCommand({ policyName: "seeded-policy", target: certificateArn }));
    const attached = await f.client.send(new ListAttachedPoliciesCommand({ target: certificateArn }));
    assert.deepEqual(attached.policies?.map((p) => p.policyName).sort(), ["device", "seeded-policy"]);
    assert.deepEqual(
      f.emulator.state
        .attachedPolicies(certificateArn)
        .map((p) => p.policyName)
        .sort(),
      ["device", "seeded-policy"],
    );

    await sdkError(
      f.client.send(new DeletePolicyCommand({ policyName: "device" })),
      "DeleteConflictException",
    );
    await sdkError(
      f.client.send(new AttachPolicyCommand({ policyName: "ghost", target: certificateArn })),
      "ResourceNotFoundException",
    );
    await f.client.send(new DetachPolicyCommand({ policyName: "device", target: certificateArn }));
    await f.client.send(new DeletePolicyCommand({ policyName: "device" }));
    await sdkError(
      f.client.send(new GetPolicyCommand({ policyName: "device" })),
      "ResourceNotFoundException",
    );
  });
});
