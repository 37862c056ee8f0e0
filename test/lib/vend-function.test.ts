// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { LAMBDA_NODE_OPTIONS } from "#lib/bundling.ts";
import { LAMBDA_SETTING_NAMES } from "#lib/lambda-settings.ts";
import { iotAdapterActions } from "./adapter-calls.ts";
import { cfnText, defaultApp, fullOptionsApp, resourceAt } from "./app-fixture.ts";

const IOT = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}";

/** The vend role's policy statements as { Sid: { actions, resources } } (text, sorted). */
function vendStatements(app = defaultApp()) {
  const policy = resourceAt(app.provisioningTemplate, "AWS::IAM::Policy", "VendRoleDefaultPolicy").Properties;
  const bySid: Record<string, { actions: string[]; resources: string[] }> = {};
  for (const s of policy.PolicyDocument.Statement as Record<string, unknown>[]) {
    assert.equal(s.Effect, "Allow");
    const list = (v: unknown) => (Array.isArray(v) ? v : [v]).map(cfnText).sort();
    bySid[String(s.Sid ?? "logs")] = { actions: list(s.Action), resources: list(s.Resource) };
  }
  return bySid;
}

describe("lib/constructs/vend-function", () => {
  it("runs vend-certificate on Node.js 22, arm64, ESM handler, within API Gateway's 29 s", () => {
    const fn = resourceAt(
      defaultApp().provisioningTemplate,
      "AWS::Lambda::Function",
      "VendFunction",
    ).Properties;
    assert.equal(fn.Runtime, "nodejs22.x");
    assert.deepEqual(fn.Architectures, ["arm64"]);
    assert.equal(fn.Handler, "index.handler");
    assert.ok(fn.Timeout <= 29, `timeout ${fn.Timeout}`);
  });

  it("sets the settings the wiring requires (registry, provisioning budget), Powertools and source-map options", () => {
    const fn = resourceAt(
      defaultApp().provisioningTemplate,
      "AWS::Lambda::Function",
      "VendFunction",
    ).Properties;
    const env = fn.Environment.Variables;
    assert.match(
      cfnText(env.REGISTRY_TABLE_NAME),
      /^\$\{import:IotOnramp-Registry:ExportsOutputRefRegistryTable/,
    );
    assert.equal(env.PRODUCT_SECRET_PREFIX, "onramp/products/");
    assert.equal(env.REGISTRY_KEY_SECRET_NAME, "onramp/registry-key");
    assert.equal(env.POWERTOOLS_SERVICE_NAME, "vend-certificate");
    assert.equal(env.NODE_OPTIONS, LAMBDA_NODE_OPTIONS);
    // The provisioning budget from AWS's default quotas (lambdas/core/admission/quota-profile.ts).
    assert.equal(env.PROVISIONING_RATE, "10");
    assert.equal(env.PROVISIONING_SHARDS, "1");
  });

  it("covers every requireEnv(...) of lambda-wiring.ts", () => {
    const wiring = readFileSync(
      new URL("../../lambdas/entrypoints/lambda-wiring.ts", import.meta.url),
      "utf8",
    );
    const required = [...wiring.matchAll(/requireEnv\("([A-Z0-9_]+)"\)/g)].map((m) => m[1]!);
    assert.ok(required.length >= 3, "the wiring reads its settings with requireEnv");
    const env = resourceAt(defaultApp().provisioningTemplate, "AWS::Lambda::Function", "VendFunction")
      .Properties.Environment.Variables;
    for (const name of required) {
      assert.ok(LAMBDA_SETTING_NAMES.includes(name), `${name} is missing from lib/lambda-settings.ts`);
      assert.ok(name in env, `${name} is not set on the function`);
    }
  });

  it("logs to its own log group with explicit retention", () => {
    const { provisioningTemplate } = defaultApp();
    const fn = resourceAt(provisioningTemplate, "AWS::Lambda::Function", "VendFunction").Properties;
    assert.match(cfnText(fn.LoggingConfig.LogGroup), /^\$\{VendLogs[0-9A-F]+\}$/);
    provisioningTemplate.hasResourceProperties("AWS::Logs::LogGroup", { RetentionInDays: 365 });
  });

  it("has a role without managed policies", () => {
    const role = resourceAt(defaultApp().provisioningTemplate, "AWS::IAM::Role", "VendRole");
    assert.equal(role.Properties.ManagedPolicyArns, undefined);
    assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement[0].Principal, {
      Service: "lambda.amazonaws.com",
    });
    // No role in the stack has managed policies.
    for (const other of Object.values(defaultApp().provisioningTemplate.findResources("AWS::IAM::Role"))) {
      assert.equal(other.Properties.ManagedPolicyArns, undefined);
    }
  });

  it("grants exactly the vend path's calls, each on the narrowest resource IAM supports", () => {
    assert.deepEqual(vendStatements(), {
      logs: {
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [vendStatements().logs!.resources[0]!],
      },
      RegistryTableItems: {
        actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        resources: ["${import:IotOnramp-Registry:ExportsOutputFnGetAttRegistryTableDB777839Arn16750D15}"],
      },
      ProductSecretsAndRegistryKey: {
        actions: ["secretsmanager:GetSecretValue"],
        resources: [
          "${import:IotOnramp-Registry:ExportsOutputRefSecretsRegistryKey16AE1EB0FFBC1A49}",
          "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:onramp/products/*",
        ],
      },
      IotCertificates: {
        actions: [
          "iot:AttachPolicy",
          "iot:AttachThingPrincipal",
          "iot:DeleteCertificate",
          "iot:DescribeCertificate",
          "iot:DetachPolicy",
          "iot:DetachThingPrincipal",
          "iot:ListAttachedPolicies",
          "iot:ListPrincipalThings",
          "iot:UpdateCertificate",
        ],
        resources: [`${IOT}:cert/*`],
      },
      IotThings: {
        actions: [
          "iot:CreateThing",
          "iot:DeleteThing",
          "iot:DescribeThing",
          "iot:ListThingPrincipals",
          "iot:UpdateThing",
        ],
        resources: [`${IOT}:thing/*`],
      },
      IotDevicePolicy: { actions: ["iot:GetPolicy"], resources: [`${IOT}:policy/onramp-device-policy`] },
      ProductThingGroups: {
        actions: [
          "iot:AddThingToThingGroup",
          "iot:AttachPolicy",
          "iot:CreateThingGroup",
          "iot:DescribeThingGroup",
          "iot:ListAttachedPolicies",
        ],
        resources: [`${IOT}:thinggroup/onramp-product-*`],
      },
      ThingGroupMembership: {
        actions: ["iot:AddThingToThingGroup", "iot:ListThingGroupsForThing"],
        resources: [`${IOT}:thing/*`],
      },
      IotActionsWithoutResourceType: {
        actions: [
          "iot:CreateCertificateFromCsr",
          "iot:CreateKeysAndCertificate",
          "iot:DescribeEndpoint",
          "iot:RegisterThing",
        ],
        resources: ["*"],
      },
    });
    assert.match(vendStatements().logs!.resources[0]!, /^\$\{VendLogs[0-9A-F]+\.Arn\}$/);
  });

  it("covers all 19 IoT calls of the vend port's methods in the adapter (iot-provisioning.ts)", () => {
    // The methods of IotProvisioning (lambdas/core/vending/ports.ts) and the private helper they
    // share; the adapter's other methods (JITR's detach, the CLI's reconciler) are not on the vend path.
    const commands = iotAdapterActions([
      "createCertificateFromCsr",
      "createKeysAndCertificate",
      "registerThing",
      "describeCertificate",
      "inspectCertificate",
      "setCertificateStatus",
      "destroyCertificate",
      "detachArn",
      "deleteThingIfUnused",
      "getDataEndpoint",
      // The direct path (register-device-thing.ts) and the group policies inspectCertificate counts.
      "attachThingPrincipal",
      "addThingToPolicyGroup",
      "policyGroup",
      "ensureThingGroup",
      "thingGroupPolicies",
      "thingGroupArns",
    ]);
    assert.equal(commands.size, 19, [...commands].join(", "));
    const granted = new Set(Object.values(vendStatements()).flatMap((s) => s.actions));
    for (const action of commands) assert.ok(granted.has(action), `${action} is not granted`);
  });

  it("may use the table's customer managed key when there is one", () => {
    const statements = vendStatements(fullOptionsApp());
    assert.deepEqual(statements.RegistryTableKey?.actions, [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]);
    assert.match(statements.RegistryTableKey!.resources[0]!, /^\$\{import:IotOnramp-Registry:.*RegistryKey/);
    assert.equal(vendStatements().RegistryTableKey, undefined);
  });
});
