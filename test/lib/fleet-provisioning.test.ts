// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultFleetHookConfig } from "#core/fleet/authorize-fleet-provisioning.ts";
import { LAMBDA_NODE_OPTIONS } from "#lib/bundling.ts";
import { PRE_PROVISIONING_PAYLOAD_VERSION } from "#lib/constructs/fleet-provisioning.ts";
import { CLAIM_SETTLEMENT_ACTIONS } from "#lib/iam-grants.ts";
import {
  FLEET_CLAIM_POLICY_DOCUMENT,
  FLEET_CLAIM_POLICY_NAME,
  loadPolicyDocument,
  loadProvisioningTemplate,
  PROVISIONING_TEMPLATES,
} from "#templates/catalog.ts";
import { CLAIM_IOT_METHODS, iotAdapterActions } from "./adapter-calls.ts";
import {
  appWithContext,
  cfnText,
  defaultApp,
  fullOptionsApp,
  logicalIdAt,
  resourceAt,
  type SynthesizedApp,
} from "./app-fixture.ts";

const IOT = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}";
const TABLE_ARN = "${import:IotOnramp-Registry:ExportsOutputFnGetAttRegistryTableDB777839Arn16750D15}";

/** The hook role's statements as { Sid: { actions, resources, condition } } (text, sorted). */
function statementsOf(app: SynthesizedApp = defaultApp()) {
  const policy = resourceAt(
    app.provisioningTemplate,
    "AWS::IAM::Policy",
    "FleetHookRoleDefaultPolicy",
  ).Properties;
  const bySid: Record<string, { actions: string[]; resources: string[]; condition?: unknown }> = {};
  for (const s of policy.PolicyDocument.Statement as Record<string, unknown>[]) {
    assert.equal(s.Effect, "Allow");
    const list = (v: unknown) => (Array.isArray(v) ? v : [v]).map(cfnText).sort();
    bySid[String(s.Sid ?? list(s.Action).join(","))] = {
      actions: list(s.Action),
      resources: list(s.Resource),
      ...(s.Condition ? { condition: s.Condition } : {}),
    };
  }
  return bySid;
}
const TEMPLATE = PROVISIONING_TEMPLATES.fleetClaim;

type PolicyDocument = {
  Statement: { Effect: string; Action: string | string[]; Resource: string | string[] }[];
};

describe("lib/constructs/fleet-provisioning", () => {
  const template = () => defaultApp().provisioningTemplate;
  const hook = () => resourceAt(template(), "AWS::Lambda::Function", "FleetHookFunction").Properties;
  const hookId = () => logicalIdAt(template(), "AWS::Lambda::Function", "FleetHookFunction");

  it("deploys templates/provisioning/fleet-claim-device.json as an enabled fleet template", () => {
    const fleet = resourceAt(template(), "AWS::IoT::ProvisioningTemplate", "FleetTemplate").Properties;
    assert.equal(fleet.TemplateName, TEMPLATE);
    assert.equal(fleet.TemplateType, "FLEET_PROVISIONING");
    assert.equal(fleet.Enabled, true);
    assert.equal(fleet.TemplateBody, loadProvisioningTemplate(TEMPLATE));
    const roleId = logicalIdAt(template(), "AWS::IAM::Role", "IotProvisioningRole");
    assert.equal(cfnText(fleet.ProvisioningRoleArn), `\${${roleId}.Arn}`, "the role JITP uses too");
  });

  it("calls the pre-provisioning hook (payload 2020-04-01), only after AWS IoT may invoke it", () => {
    const resource =
      template().toJSON().Resources[
        logicalIdAt(template(), "AWS::IoT::ProvisioningTemplate", "FleetTemplate")
      ];
    assert.deepEqual(resource.Properties.PreProvisioningHook, {
      TargetArn: { "Fn::GetAtt": [hookId(), "Arn"] },
      PayloadVersion: PRE_PROVISIONING_PAYLOAD_VERSION,
    });
    assert.equal(PRE_PROVISIONING_PAYLOAD_VERSION, "2020-04-01");
    const permissionId = logicalIdAt(template(), "AWS::Lambda::Permission", "FleetHookFunctionIotHookInvoke");
    assert.ok(resource.DependsOn.includes(permissionId));
  });

  it("lets only AWS IoT invoke the hook, for this template of this account", () => {
    const permission = resourceAt(
      template(),
      "AWS::Lambda::Permission",
      "FleetHookFunctionIotHookInvoke",
    ).Properties;
    assert.equal(permission.Action, "lambda:InvokeFunction");
    assert.equal(permission.Principal, "iot.amazonaws.com");
    assert.equal(cfnText(permission.FunctionName), `\${${hookId()}.Arn}`);
    assert.equal(cfnText(permission.SourceArn), `${IOT}:provisioningtemplate/${TEMPLATE}`);
    assert.equal(cfnText(permission.SourceAccount), "${AWS::AccountId}");
  });

  it("runs the hook on Node.js 22, arm64, within AWS IoT's 5 s and above the use case's deadline", () => {
    assert.equal(hook().Runtime, "nodejs22.x");
    assert.deepEqual(hook().Architectures, ["arm64"]);
    assert.equal(hook().Handler, "index.handler");
    assert.ok(hook().Timeout <= 5);
    assert.ok(hook().Timeout * 1000 > defaultFleetHookConfig.deadlineMs);
    const env = hook().Environment.Variables;
    // Every setting lambdaServices() requires: the hook's wiring fails fast without one.
    assert.deepEqual(Object.keys(env).sort(), [
      "NODE_OPTIONS",
      "POWERTOOLS_LOG_LEVEL",
      "POWERTOOLS_SERVICE_NAME",
      "PRODUCT_SECRET_PREFIX",
      "REGISTRY_KEY_SECRET_NAME",
      "REGISTRY_TABLE_NAME",
    ]);
    assert.match(
      cfnText(env.REGISTRY_TABLE_NAME),
      /^\$\{import:IotOnramp-Registry:ExportsOutputRefRegistryTable/,
    );
    assert.equal(env.PRODUCT_SECRET_PREFIX, "onramp/products/");
    assert.equal(env.REGISTRY_KEY_SECRET_NAME, "onramp/registry-key");
    assert.equal(env.POWERTOOLS_SERVICE_NAME, "pre-provisioning-hook");
    assert.equal(env.NODE_OPTIONS, LAMBDA_NODE_OPTIONS);
    assert.match(cfnText(hook().LoggingConfig.LogGroup), /^\$\{FleetHookLogs[0-9A-F]+\}$/);
  });

  it("gives the hook exactly its calls: claim and nonce writes, the signing secret, settling a stale claim", () => {
    const statements = statementsOf();
    const logs = Object.entries(statements).find(([, s]) => s.actions.includes("logs:PutLogEvents"));
    assert.ok(logs);
    assert.match(logs[1].resources[0]!, /^\$\{FleetHookLogs[0-9A-F]+\.Arn\}$/);
    const { [logs[0]]: _logs, ...rest } = statements;
    assert.deepEqual(rest, {
      RegistryTableItems: {
        actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        resources: [TABLE_ARN],
      },
      ProductSecretsAndRegistryKey: {
        actions: ["secretsmanager:GetSecretValue"],
        resources: [
          "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:onramp/products/*",
          "${import:IotOnramp-Registry:ExportsOutputRefSecretsRegistryKey16AE1EB0FFBC1A49}",
        ].sort(),
      },
      IotCertificates: {
        actions: [...CLAIM_SETTLEMENT_ACTIONS.certificate].sort(),
        resources: [`${IOT}:cert/*`],
      },
    });
  });

  it("covers every IoT call of settling a stale claim; no RegisterThing, no thing or creation actions", () => {
    const called = iotAdapterActions(CLAIM_IOT_METHODS);
    const granted = Object.values(statementsOf()).flatMap((s) => s.actions);
    for (const action of called) assert.ok(granted.includes(action), `${action} is not granted`);
    for (const notNeeded of [
      "iot:RegisterThing",
      "iot:CreateThing",
      "iot:CreateCertificateFromCsr",
      "iot:CreateKeysAndCertificate",
      "iot:AttachPolicy",
      "iot:AttachThingPrincipal",
    ]) {
      assert.ok(!granted.includes(notNeeded), `${notNeeded} is not on the hook's path`);
    }
  });

  it("with a thing-name prefix, detaches a stale certificate only from things under it", () => {
    const statements = statementsOf(appWithContext("thing-prefix", { thingNamePrefix: "ACME-" }));
    const bound = statements.IotCertificateToPrefixedThings;
    assert.deepEqual(bound?.actions, ["iot:DetachThingPrincipal"]);
    const condition = bound?.condition as { ArnLike: Record<string, unknown> };
    assert.equal(cfnText(condition.ArnLike["iot:thingArn"]), `${IOT}:thing/ACME-*`);
  });

  it("may read and write the table under its customer managed key when there is one", () => {
    const key = statementsOf(fullOptionsApp()).RegistryTableKey;
    assert.ok(key?.actions.includes("kms:Decrypt"));
    assert.ok(key?.actions.includes("kms:GenerateDataKey"));
    assert.equal(statementsOf().RegistryTableKey, undefined);
  });

  it("creates the claim policy from templates/policies/fleet-claim-policy.json, unchanged", () => {
    const policy = resourceAt(template(), "AWS::IoT::Policy", "FleetClaimPolicy").Properties;
    assert.equal(policy.PolicyName, FLEET_CLAIM_POLICY_NAME);
    assert.deepEqual(policy.PolicyDocument, JSON.parse(loadPolicyDocument(FLEET_CLAIM_POLICY_DOCUMENT)));
  });

  it("the claim policy allows connecting and the provisioning topics of this template, nothing else", () => {
    const document = JSON.parse(loadPolicyDocument(FLEET_CLAIM_POLICY_DOCUMENT)) as PolicyDocument;
    const list = (v: string | string[]) => (Array.isArray(v) ? v : [v]);
    const actions = new Set(document.Statement.flatMap((s) => list(s.Action)));
    assert.deepEqual([...actions].sort(), ["iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe"]);
    const prefixes = [
      "$aws/certificates/create/",
      "$aws/certificates/create-from-csr/",
      `$aws/provisioning-templates/${TEMPLATE}/provision/`,
    ];
    for (const statement of document.Statement) {
      assert.equal(statement.Effect, "Allow");
      for (const resource of list(statement.Resource)) {
        const [, kind, name] = /^arn:aws:iot:\*:\*:(client|topic|topicfilter)\/(.*)$/.exec(resource) ?? [];
        assert.ok(kind, resource);
        if (kind === "client") {
          assert.deepEqual(list(statement.Action), ["iot:Connect"]);
          continue;
        }
        assert.ok(
          prefixes.some((p) => name === `${p}*`),
          `${resource} is not a provisioning topic of ${TEMPLATE}`,
        );
        assert.equal(kind === "topicfilter", list(statement.Action).includes("iot:Subscribe"));
      }
    }
    for (const prefix of prefixes) {
      for (const kind of ["topic", "topicfilter"]) {
        assert.ok(
          document.Statement.some((s) => list(s.Resource).includes(`arn:aws:iot:*:*:${kind}/${prefix}*`)),
          `${kind}/${prefix}* is allowed`,
        );
      }
    }
  });

  it("exports the template, claim policy and hook names", () => {
    const outputs = template().toJSON().Outputs;
    assert.equal(outputs.FleetTemplateName.Value, TEMPLATE);
    assert.deepEqual(outputs.FleetTemplateName.Export, { Name: "IotOnramp-FleetTemplateName" });
    assert.equal(outputs.ClaimPolicyName.Value, FLEET_CLAIM_POLICY_NAME);
    assert.deepEqual(outputs.ClaimPolicyName.Export, { Name: "IotOnramp-ClaimPolicyName" });
    assert.equal(cfnText(outputs.PreProvisioningHookFunctionName.Value), `\${${hookId()}}`);
    assert.match(cfnText(outputs.PreProvisioningHookLogGroupName.Value), /^\$\{FleetHookLogs[0-9A-F]+\}$/);
  });
});
