// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { REGISTER_THING_ACTIONS } from "#lib/iam-grants.ts";
import { cfnText, defaultApp, logicalIdAt, resourceAt } from "./app-fixture.ts";

const IOT = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}";

describe("lib/constructs/iot-provisioning-role", () => {
  const template = () => defaultApp().provisioningTemplate;

  it("is assumed by AWS IoT only, for this account and region (confused-deputy conditions)", () => {
    const role = resourceAt(template(), "AWS::IAM::Role", "IotProvisioningRole").Properties;
    assert.equal(role.ManagedPolicyArns, undefined, "scoped statements instead of AWSIoTThingsRegistration");
    const [trust, ...more] = role.AssumeRolePolicyDocument.Statement;
    assert.equal(more.length, 0);
    assert.equal(trust.Action, "sts:AssumeRole");
    assert.deepEqual(trust.Principal, { Service: "iot.amazonaws.com" });
    assert.equal(cfnText(trust.Condition.StringEquals["aws:SourceAccount"]), "${AWS::AccountId}");
    assert.equal(cfnText(trust.Condition.ArnLike["aws:SourceArn"]), `${IOT}:*`);
  });

  it("allows what the JITP and fleet templates create, on ARNs; only RegisterThing on *", () => {
    const policy = resourceAt(template(), "AWS::IAM::Policy", "IotProvisioningRoleDefaultPolicy").Properties;
    const list = (v: unknown) => (Array.isArray(v) ? v : [v]).map(cfnText).sort();
    const bySid = Object.fromEntries(
      (policy.PolicyDocument.Statement as Record<string, unknown>[]).map((s) => {
        assert.equal(s.Effect, "Allow");
        return [s.Sid, { actions: list(s.Action), resources: list(s.Resource) }];
      }),
    );
    assert.deepEqual(bySid, {
      IotCertificates: {
        actions: [
          "iot:AttachPolicy",
          "iot:AttachThingPrincipal",
          "iot:DescribeCertificate",
          "iot:UpdateCertificate",
        ],
        resources: [`${IOT}:cert/*`],
      },
      IotThings: {
        actions: ["iot:CreateThing", "iot:DescribeThing", "iot:UpdateThing"],
        resources: [`${IOT}:thing/*`],
      },
      IotDevicePolicy: { actions: ["iot:GetPolicy"], resources: [`${IOT}:policy/onramp-device-policy`] },
      IotActionsWithoutResourceType: { actions: ["iot:RegisterThing"], resources: ["*"] },
    });
    const granted = Object.values(bySid).flatMap((s) => s.actions);
    for (const action of Object.values(REGISTER_THING_ACTIONS).flat())
      assert.ok(granted.includes(action), action);
    for (const never of [
      "iot:DeleteCertificate",
      "iot:DeleteThing",
      "iot:CreatePolicy",
      "iot:RegisterCertificate",
    ]) {
      assert.ok(!granted.includes(never), never);
    }
  });

  it("exports its ARN for `onramp ca register --role-arn`", () => {
    const outputs = template().toJSON().Outputs;
    assert.equal(
      cfnText(outputs.JitpRoleArn.Value),
      `\${${logicalIdAt(template(), "AWS::IAM::Role", "IotProvisioningRole")}.Arn}`,
    );
    assert.deepEqual(outputs.JitpRoleArn.Export, { Name: "IotOnramp-JitpRoleArn" });
  });
});
