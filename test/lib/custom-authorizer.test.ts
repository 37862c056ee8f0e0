// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected ARNs use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { LAMBDA_NODE_OPTIONS } from "#lib/bundling.ts";
import { AUTHORIZER_TIMEOUT, SECRET_DEVICE_DOMAIN_PROTOCOL } from "#lib/constructs/custom-authorizer.ts";
import { SECRET_LOGIN_THING_ACTIONS } from "#lib/iam-grants.ts";
import { secretDeviceAuthorizerName } from "#lib/provisioning-stack.ts";
import {
  iotAdapterActions,
  pickedIotMethods,
  registryAdapterActions,
  registryMethodsCalled,
} from "./adapter-calls.ts";
import {
  appWithContext,
  cfnText,
  defaultApp,
  fullOptionsApp,
  logicalIdAt,
  onlyResource,
  resourceAt,
  type SynthesizedApp,
} from "./app-fixture.ts";

const IOT = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}";
const TABLE_ARN = "${import:IotOnramp-Registry:ExportsOutputFnGetAttRegistryTableDB777839Arn16750D15}";
const REGISTRY_KEY = "${import:IotOnramp-Registry:ExportsOutputRefSecretsRegistryKey16AE1EB0FFBC1A49}";
const PRODUCT_SECRETS =
  "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:onramp/products/*";
const POLICY = "SecretDeviceAuthorizerRoleDefaultPolicy";
const prefixApp = () => appWithContext("thing-prefix", { thingNamePrefix: "ACME-" });

/** A role policy's statements as { Sid: { actions, resources } } (text, sorted). */
function statementsOf(prefix: string, app: SynthesizedApp = defaultApp()) {
  const policy = resourceAt(app.provisioningTemplate, "AWS::IAM::Policy", prefix).Properties;
  const bySid: Record<string, { actions: string[]; resources: string[]; condition?: unknown }> = {};
  for (const s of policy.PolicyDocument.Statement as Record<string, unknown>[]) {
    assert.equal(s.Effect, "Allow");
    const list = (v: unknown) => (Array.isArray(v) ? v : [v]).map(cfnText).sort();
    bySid[String(s.Sid ?? "logs")] = {
      actions: list(s.Action),
      resources: list(s.Resource),
      ...(s.Condition ? { condition: s.Condition } : {}),
    };
  }
  return bySid;
}

describe("lib/constructs/custom-authorizer", () => {
  const template = () => defaultApp().provisioningTemplate;
  const fn = () =>
    resourceAt(template(), "AWS::Lambda::Function", "SecretDeviceAuthorizerFunction").Properties;
  const fnId = () => logicalIdAt(template(), "AWS::Lambda::Function", "SecretDeviceAuthorizerFunction");
  const authorizer = () => onlyResource(template(), "AWS::IoT::Authorizer");
  const authorizerId = () => logicalIdAt(template(), "AWS::IoT::Authorizer", "SecretDeviceAuthorizer");
  const domain = () => onlyResource(template(), "AWS::IoT::DomainConfiguration");

  it("runs custom-authorizer on Node.js 22, arm64, with the shared settings, within AWS IoT's 5 s", () => {
    assert.equal(fn().Runtime, "nodejs22.x");
    assert.deepEqual(fn().Architectures, ["arm64"]);
    assert.equal(fn().Handler, "index.handler");
    assert.equal(fn().Timeout, AUTHORIZER_TIMEOUT.toSeconds());
    assert.ok(fn().Timeout <= 5, "AWS IoT gives a custom authorizer 5 seconds");
    assert.equal(fn().Environment.Variables.NODE_OPTIONS, LAMBDA_NODE_OPTIONS);
    assert.equal(fn().Environment.Variables.POWERTOOLS_SERVICE_NAME, "custom-authorizer");
    assert.match(cfnText(fn().LoggingConfig.LogGroup), /^\$\{SecretDeviceAuthorizerLogs[0-9A-F]+\}$/);
    const logs = resourceAt(template(), "AWS::Logs::LogGroup", "SecretDeviceAuthorizerLogs").Properties;
    assert.equal(typeof logs.RetentionInDays, "number", "explicit retention");
  });

  it("bounds each SDK call to two attempts (the entry's lambdaServices option)", () => {
    const entry = readFileSync(
      new URL("../../lambdas/entrypoints/custom-authorizer.ts", import.meta.url),
      "utf8",
    );
    assert.match(entry, /lambdaServices\(\{ maxAttempts: 2 \}\)/);
  });

  it("sets the three settings the shared wiring requires", () => {
    const env = fn().Environment.Variables;
    assert.match(
      cfnText(env.REGISTRY_TABLE_NAME),
      /^\$\{import:IotOnramp-Registry:ExportsOutputRefRegistryTable/,
    );
    assert.equal(env.PRODUCT_SECRET_PREFIX, "onramp/products/");
    assert.equal(env.REGISTRY_KEY_SECRET_NAME, "onramp/registry-key");
  });

  it("reserves 100 by default (lib/lambda-settings.ts), or what context authorizerReservedConcurrency says", () => {
    assert.equal(fn().ReservedConcurrentExecutions, 100);
    const reserved = appWithContext("authorizer-concurrency", { authorizerReservedConcurrency: "25" });
    const props = resourceAt(
      reserved.provisioningTemplate,
      "AWS::Lambda::Function",
      "SecretDeviceAuthorizerFunction",
    ).Properties;
    assert.equal(props.ReservedConcurrentExecutions, 25);
  });

  it("is an AWS IoT authorizer for MQTT username/password: signing disabled, active, no HTTP caching", () => {
    const props = authorizer().Properties;
    assert.equal(props.AuthorizerName, "IotOnramp-SecretDevices");
    assert.equal(props.AuthorizerName, secretDeviceAuthorizerName("IotOnramp"));
    assert.match(props.AuthorizerName, /^[\w=,@-]{1,128}$/);
    assert.equal(cfnText(props.AuthorizerFunctionArn), `\${${fnId()}.Arn}`);
    assert.equal(props.SigningDisabled, true);
    assert.equal(props.Status, "ACTIVE");
    assert.equal(props.EnableCachingForHttp, false);
    assert.equal(props.TokenKeyName, undefined, "no token signature with username/password");
    assert.equal(props.TokenSigningPublicKeys, undefined);
  });

  it("lets only AWS IoT invoke the function, from this authorizer of this account", () => {
    const permissions = Object.values(template().findResources("AWS::Lambda::Permission")).filter(
      (p) => cfnText(p.Properties.FunctionName) === `\${${fnId()}.Arn}`,
    );
    assert.equal(permissions.length, 1, "one invoke permission on the authorizer function");
    const permission = permissions[0]!.Properties;
    assert.equal(permission.Action, "lambda:InvokeFunction");
    assert.equal(permission.Principal, "iot.amazonaws.com");
    assert.equal(cfnText(permission.SourceArn), `\${${authorizerId()}.Arn}`);
    assert.equal(cfnText(permission.SourceAccount), "${AWS::AccountId}");
  });

  it("has a domain configuration on an AWS-managed domain whose default authorizer is ours, no override", () => {
    const props = domain().Properties;
    assert.equal(props.DomainName, undefined, "AWS-managed domain: no domain name, no certificate");
    assert.equal(props.ServerCertificateArns, undefined);
    assert.equal(props.ValidationCertificateArn, undefined);
    assert.equal(props.ServiceType, "DATA");
    assert.equal(props.DomainConfigurationStatus, "ENABLED");
    assert.deepEqual(props.AuthorizerConfig, {
      DefaultAuthorizerName: { Ref: authorizerId() },
      AllowAuthorizerOverride: false,
    });
    assert.equal(props.AuthenticationType, SECRET_DEVICE_DOMAIN_PROTOCOL.authenticationType);
    assert.equal(props.AuthenticationType, "CUSTOM_AUTH");
    assert.equal(props.ApplicationProtocol, "SECURE_MQTT");
    // CloudFormation names it, so a new deployment after a removal does not collide with the
    // retained one.
    assert.equal(props.DomainConfigurationName, undefined);
  });

  it("retains the domain configuration (AWS-managed domains are deleted only after 7 days disabled)", () => {
    const [id] = Object.keys(template().findResources("AWS::IoT::DomainConfiguration"));
    const resource = template().toJSON().Resources[id!];
    assert.equal(resource.DeletionPolicy, "Retain");
    assert.equal(resource.UpdateReplacePolicy, "Retain");
    // Also with destroyOnRemoval (the full-options app): a stack deletion could not delete it.
    const full = fullOptionsApp().provisioningTemplate.findResources("AWS::IoT::DomainConfiguration");
    assert.equal(Object.values(full)[0]?.DeletionPolicy, "Retain");
  });

  it("grants exactly the authorizer's calls: two table actions, two secrets, two thing actions", () => {
    const statements = statementsOf(POLICY);
    assert.match(statements.logs!.resources[0]!, /^\$\{SecretDeviceAuthorizerLogs[0-9A-F]+\.Arn\}$/);
    assert.deepEqual(statements.logs!.actions, ["logs:CreateLogStream", "logs:PutLogEvents"]);
    const { logs: _logs, ...rest } = statements;
    assert.deepEqual(rest, {
      RegistryTableItems: { actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"], resources: [TABLE_ARN] },
      ProductSecretsAndRegistryKey: {
        actions: ["secretsmanager:GetSecretValue"],
        resources: [REGISTRY_KEY, PRODUCT_SECRETS],
      },
      IotThings: { actions: ["iot:CreateThing", "iot:DescribeThing"], resources: [`${IOT}:thing/*`] },
    });
    const text = JSON.stringify(statements);
    for (const absent of ["kms:", "iot:UpdateThing", "iot:DeleteThing", "cert/", "dynamodb:PutItem", '"*"']) {
      assert.ok(!text.includes(absent), `${absent} is not on the authorizer's path`);
    }
  });

  it("covers the IoT calls the handler's port picks, and only those", () => {
    const picked = [...new Set(pickedIotMethods("lambdas/handlers/custom-authorizer.ts"))];
    assert.deepEqual(picked.sort(), ["createThing", "describeThing"]);
    assert.deepEqual([...iotAdapterActions(picked)].sort(), [...SECRET_LOGIN_THING_ACTIONS].sort());
    assert.deepEqual(statementsOf(POLICY).IotThings?.actions, [...SECRET_LOGIN_THING_ACTIONS].sort());
  });

  it("covers the registry calls of the decision and the first login, and only those", () => {
    const methods = [
      ...registryMethodsCalled("lambdas/core/authorizer/authorize-mqtt-connect.ts"),
      ...registryMethodsCalled("lambdas/core/authorizer/record-first-login.ts"),
    ];
    assert.deepEqual([...new Set(methods)].sort(), ["commitSecretLogin", "getDevice", "getProduct"]);
    assert.deepEqual(
      [...registryAdapterActions(methods)].sort(),
      statementsOf(POLICY).RegistryTableItems?.actions,
    );
  });

  it("with a thing-name prefix: CreateThing and DescribeThing on thing/{prefix}* only", () => {
    assert.deepEqual(statementsOf(POLICY, prefixApp()).IotThings?.resources, [`${IOT}:thing/ACME-*`]);
  });

  it("may use the table's customer managed key when there is one (UpdateItem writes)", () => {
    const statements = statementsOf(POLICY, fullOptionsApp());
    assert.ok(statements.RegistryTableKey?.actions.includes("kms:Decrypt"));
    assert.ok(statements.RegistryTableKey?.actions.includes("kms:GenerateDataKey"));
    assert.equal(statementsOf(POLICY).RegistryTableKey, undefined);
  });

  it("exports the authorizer, its function and logs, the domain configuration and how to find its host", () => {
    const outputs = template().toJSON().Outputs;
    assert.equal(cfnText(outputs.CustomAuthorizerName.Value), `\${${authorizerId()}}`);
    assert.deepEqual(outputs.CustomAuthorizerName.Export, { Name: "IotOnramp-CustomAuthorizerName" });
    assert.equal(cfnText(outputs.CustomAuthorizerFunctionName.Value), `\${${fnId()}}`);
    assert.match(
      cfnText(outputs.CustomAuthorizerLogGroupName.Value),
      /^\$\{SecretDeviceAuthorizerLogs[0-9A-F]+\}$/,
    );
    const [domainId] = Object.keys(template().findResources("AWS::IoT::DomainConfiguration"));
    assert.equal(cfnText(outputs.SecretDeviceDomainConfigurationName.Value), `\${${domainId}}`);
    assert.equal(
      cfnText(outputs.SecretDeviceEndpointHint.Value),
      `aws iot describe-domain-configuration --domain-configuration-name \${${domainId}} --query domainName --output text --region \${AWS::Region}`,
    );
  });
});
