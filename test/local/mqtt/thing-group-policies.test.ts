// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${iot:...}" is IoT policy variable syntax, not a JS template.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  ListAttachedPoliciesCommand,
  RemoveThingFromThingGroupCommand,
} from "@aws-sdk/client-iot";
import { DeviceAuthorizer, type DeviceSession } from "#local/mqtt/device-authorizer.ts";
import { clientArn, topicArn } from "#local/mqtt/policy-engine.ts";
import { type EmulatorFixture, startEmulator } from "../iot/emulator-fixture.ts";

const scope = { region: "us-east-1", accountId: "000000000000" };
const groupPolicy = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Action: "iot:Connect",
      Resource: "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}",
    },
    {
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: "arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*",
    },
  ],
});

/**
 * Thing group policies as AWS IoT applies them (emulator registry through the real SDK, then the
 * MQTT endpoint's authorizer): a connection gets the policies of the groups (and their ancestors)
 * of the thing its client id names, only when that thing is its certificate's; a client id naming
 * another thing in the same group, or no thing, gets none.
 */
describe("thing group policies (emulator + MQTT policy engine)", () => {
  let fx: EmulatorFixture;
  let authorizer: DeviceAuthorizer;
  let certificateId: string;
  let certificateArn: string;
  let childArn: string;

  before(async () => {
    fx = await startEmulator();
    const c = fx.client;
    await c.send(new CreatePolicyCommand({ policyName: "group-policy", policyDocument: groupPolicy }));
    const parent = await c.send(new CreateThingGroupCommand({ thingGroupName: "fleet" }));
    const child = await c.send(
      new CreateThingGroupCommand({ thingGroupName: "product-a", parentGroupName: "fleet" }),
    );
    childArn = child.thingGroupArn!;
    await c.send(new AttachPolicyCommand({ policyName: "group-policy", target: parent.thingGroupArn! }));
    for (const thingName of ["dev-1", "dev-2"]) {
      await c.send(new CreateThingCommand({ thingName }));
      await c.send(new AddThingToThingGroupCommand({ thingName, thingGroupName: "product-a" }));
    }
    const cert = await c.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
    certificateId = cert.certificateId!;
    certificateArn = cert.certificateArn!;
    await c.send(new AttachThingPrincipalCommand({ thingName: "dev-1", principal: certificateArn }));
    authorizer = new DeviceAuthorizer(fx.emulator.state, scope);
  });
  after(async () => fx.stop());

  const session = (clientId: string): DeviceSession => ({
    clientId,
    certificateId,
    certificateArn,
    sessionIdentifier: "s",
    subject: { commonName: "dev-1" },
    issuer: { commonName: "CA" },
  });
  const connect = (clientId: string) =>
    authorizer.authorize(session(clientId), "iot:Connect", clientArn(scope, clientId));

  it("client id = the certificate's thing: the policy of the thing's group's parent applies", () => {
    assert.equal(connect("dev-1").allowed, true);
    const publish = authorizer.authorize(session("dev-1"), "iot:Publish", topicArn(scope, "things/dev-1/x"));
    assert.equal(publish.allowed, true);
  });

  it("client id ≠ thing name: another thing of the same group, or no thing, gets no group policy", () => {
    assert.deepEqual(connect("dev-2"), { allowed: false, reason: "implicit-deny" });
    assert.deepEqual(connect("nobody"), { allowed: false, reason: "implicit-deny" });
  });

  it("ListAttachedPolicies on the group: recursive includes the parent's policy", async () => {
    const direct = await fx.client.send(new ListAttachedPoliciesCommand({ target: childArn }));
    assert.deepEqual(direct.policies ?? [], []);
    const recursive = await fx.client.send(
      new ListAttachedPoliciesCommand({ target: childArn, recursive: true }),
    );
    assert.deepEqual(
      recursive.policies?.map((p) => p.policyName),
      ["group-policy"],
    );
  });

  it("out of the group: nothing left to allow", async () => {
    await fx.client.send(
      new RemoveThingFromThingGroupCommand({ thingName: "dev-1", thingGroupName: "product-a" }),
    );
    assert.deepEqual(connect("dev-1"), { allowed: false, reason: "implicit-deny", thingName: "dev-1" });
  });
});
