import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WILDCARD_RESOURCE_ALLOW_LIST, wildcardViolations } from "#lib/iam-allow-list.ts";
import { appWithContext, defaultApp, fullOptionsApp } from "./app-fixture.ts";

describe('IAM: no wildcard actions, Resource "*" only from the allow-list', () => {
  for (const [name, app] of [
    ["default settings", defaultApp],
    ["every option on", fullOptionsApp],
    ["thing-name prefix", () => appWithContext("thing-prefix", { thingNamePrefix: "ACME-" })],
    ["CoAP gateway", () => appWithContext("coap-gateway", { coapGateway: "true" })],
  ] as const) {
    it(`${name}: every identity policy in every stack passes`, () => {
      const { assembly } = app();
      let policies = 0;
      for (const stack of assembly.stacks) {
        const resources = Object.values(stack.template.Resources ?? {}) as { Type: string }[];
        policies += resources.filter((r) => r.Type.startsWith("AWS::IAM::")).length;
        const violations = wildcardViolations(stack.template);
        assert.deepEqual(violations, [], `${stack.stackName}: ${JSON.stringify(violations, null, 2)}`);
      }
      assert.ok(policies > 0, "the walk found IAM resources");
    });
  }

  it("has a reason for every allow-listed action, each a plain service:Action", () => {
    const actions = WILDCARD_RESOURCE_ALLOW_LIST.map((g) => g.action);
    assert.equal(new Set(actions).size, actions.length);
    for (const grant of WILDCARD_RESOURCE_ALLOW_LIST) {
      assert.match(grant.action, /^[a-z0-9-]+:[A-Za-z0-9]+$/);
      assert.ok(grant.reason.length >= 20, grant.action);
    }
  });

  it('flags wildcard actions, NotAction and unlisted actions on Resource "*"', () => {
    const policy = (Statement: unknown[]) => ({
      Resources: { P: { Type: "AWS::IAM::Policy", Properties: { PolicyDocument: { Statement } } } },
    });
    const role = (Statement: unknown[]) => ({
      Resources: {
        R: {
          Type: "AWS::IAM::Role",
          Properties: { Policies: [{ PolicyName: "inline", PolicyDocument: { Statement } }] },
        },
      },
    });
    const problems = (template: object) => wildcardViolations(template).map((v) => v.problem);
    assert.deepEqual(problems(policy([{ Effect: "Allow", Action: "*", Resource: "arn:x" }])), [
      "wildcard action *",
    ]);
    assert.deepEqual(problems(role([{ Effect: "Allow", Action: ["iot:*"], Resource: "arn:x" }])), [
      "wildcard action iot:*",
    ]);
    assert.deepEqual(problems(policy([{ Effect: "Allow", Action: "iot:List*", Resource: "arn:x" }])), [
      "wildcard action iot:List*",
    ]);
    assert.deepEqual(problems(policy([{ Effect: "Allow", Action: "iot:DeleteThing", Resource: "*" }])), [
      'iot:DeleteThing on Resource "*" is not on lib/iam-allow-list.ts',
    ]);
    assert.deepEqual(problems(policy([{ Effect: "Allow", NotAction: "iam:*", Resource: "arn:x" }])), [
      "NotAction grants everything else",
    ]);
    assert.deepEqual(
      problems(policy([{ Effect: "Allow", Action: "iot:DescribeEndpoint", Resource: ["*"] }])),
      [],
    );
    assert.deepEqual(problems(policy([{ Effect: "Deny", Action: "*", Resource: "*" }])), []);
  });
});
