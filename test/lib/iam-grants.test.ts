// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { THING_PRINCIPAL_ACTIONS } from "#lib/iam-grants.ts";
import { appWithContext, cfnText, defaultApp, resourceAt, type SynthesizedApp } from "./app-fixture.ts";

const IOT = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}";
const prefixApp = () => appWithContext("thing-prefix", { thingNamePrefix: "ACME-" });

/** The roles that act on things, by the logical-id prefix of their default policy. */
const ROLE_POLICIES = [
  "VendRoleDefaultPolicy",
  "JitrRoleDefaultPolicy",
  "IotProvisioningRoleDefaultPolicy",
  "CertificateRotationRoleDefaultPolicy",
];

type Statement = { Sid: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

function statements(app: SynthesizedApp, policy: string): Record<string, Statement> {
  const document = resourceAt(app.provisioningTemplate, "AWS::IAM::Policy", policy).Properties.PolicyDocument;
  return Object.fromEntries((document.Statement as Statement[]).map((s) => [s.Sid, s]));
}

const list = (v: unknown) => (Array.isArray(v) ? v : [v]).map(cfnText).sort();

describe("lib/iam-grants: thing-name prefix", () => {
  it("without thingNamePrefix keeps thing/* and the thing-principal actions on cert/* (today's behaviour)", () => {
    for (const policy of ROLE_POLICIES) {
      const bySid = statements(defaultApp(), policy);
      assert.deepEqual(list(bySid.IotThings?.Resource), [`${IOT}:thing/*`], policy);
      assert.equal(bySid.IotCertificateToPrefixedThings, undefined, policy);
      assert.ok(list(bySid.IotCertificates?.Action).includes("iot:AttachThingPrincipal"), policy);
    }
  });

  it("with thingNamePrefix=ACME- grants thing actions on thing/ACME-* only, in every role", () => {
    for (const policy of ROLE_POLICIES) {
      const bySid = statements(prefixApp(), policy);
      assert.deepEqual(list(bySid.IotThings?.Resource), [`${IOT}:thing/ACME-*`], policy);
    }
    const text = JSON.stringify(prefixApp().provisioningTemplate.toJSON());
    assert.ok(!text.includes(":thing/*"), "no unscoped thing ARN left in the provisioning stack");
    assert.ok(!text.includes(":topic/things/*"), "rotation answers only to things under the prefix");
  });

  it("with a prefix, AttachThingPrincipal / DetachThingPrincipal only for things under it (iot:thingArn)", () => {
    for (const policy of ROLE_POLICIES) {
      const bySid = statements(prefixApp(), policy);
      const bound = bySid.IotCertificateToPrefixedThings;
      assert.ok(bound, policy);
      const actions = list(bound.Action);
      assert.ok(actions.includes("iot:AttachThingPrincipal"), policy);
      assert.ok(
        actions.every((a) => (THING_PRINCIPAL_ACTIONS as readonly string[]).includes(a)),
        policy,
      );
      assert.deepEqual(list(bound.Resource), [`${IOT}:cert/*`], policy);
      const condition = bound.Condition as { ArnLike: Record<string, unknown> };
      assert.deepEqual(Object.keys(condition), ["ArnLike"]);
      assert.equal(cfnText(condition.ArnLike["iot:thingArn"]), `${IOT}:thing/ACME-*`, policy);
      const unconditioned = list(bySid.IotCertificates?.Action);
      for (const action of THING_PRINCIPAL_ACTIONS)
        assert.ok(!unconditioned.includes(action), `${policy} ${action}`);
    }
    // The vend and JITR undo detaches; the provisioning role never does.
    assert.deepEqual(
      list(statements(prefixApp(), "VendRoleDefaultPolicy").IotCertificateToPrefixedThings?.Action),
      ["iot:AttachThingPrincipal", "iot:DetachThingPrincipal"],
    );
    assert.deepEqual(
      list(
        statements(prefixApp(), "IotProvisioningRoleDefaultPolicy").IotCertificateToPrefixedThings?.Action,
      ),
      ["iot:AttachThingPrincipal"],
    );
  });

  it("leaves certificates, the device policy and the actions without a resource type as they were", () => {
    for (const policy of ROLE_POLICIES) {
      const before = statements(defaultApp(), policy);
      const after = statements(prefixApp(), policy);
      assert.deepEqual(list(after.IotCertificates?.Resource), [`${IOT}:cert/*`], policy);
      assert.deepEqual(after.IotDevicePolicy, before.IotDevicePolicy, policy);
      assert.deepEqual(after.IotActionsWithoutResourceType, before.IotActionsWithoutResourceType, policy);
    }
  });
});
