// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected values use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ALIYUN_REGISTER_PATH } from "#credentials/aliyun-register-form.ts";
import { REGISTER_DEVICE_TIMEOUT } from "#lib/constructs/register-device-function.ts";
import { REGISTER_DEVICE_PATH, VEND_PATH } from "#lib/constructs/vending-api.ts";
import { registryAdapterActions, registryMethodsCalled } from "./adapter-calls.ts";
import {
  type CfnResourceJson,
  cfnText,
  defaultApp,
  FULL_OPTIONS_CONTEXT,
  fullOptionsApp,
  logicalIdAt,
  onlyResource,
  resourceAt,
  type SynthesizedApp,
} from "./app-fixture.ts";

const TABLE_ARN = "${import:IotOnramp-Registry:ExportsOutputFnGetAttRegistryTableDB777839Arn16750D15}";
const REGISTRY_KEY = "${import:IotOnramp-Registry:ExportsOutputRefSecretsRegistryKey16AE1EB0FFBC1A49}";
const PRODUCT_SECRETS =
  "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:onramp/products/*";

/** The API's methods by operation name. */
function methods(app: SynthesizedApp = defaultApp()): Record<string, CfnResourceJson["Properties"]> {
  return Object.fromEntries(
    vendingApiResources(app, "AWS::ApiGateway::Method").map((m) => [
      m.Properties.OperationName,
      m.Properties,
    ]),
  );
}

/** The resources of a type that belong to the vending API (the stack also has the phone API). */
function vendingApiResources(app: SynthesizedApp, type: string): CfnResourceJson[] {
  const apiId = logicalIdAt(app.provisioningTemplate, "AWS::ApiGateway::RestApi", "VendingApi");
  return Object.values(
    app.provisioningTemplate.findResources(type) as Record<string, CfnResourceJson>,
  ).filter((r) => cfnText(r.Properties.RestApiId) === `\${${apiId}}`);
}

/** A role policy's statements as { Sid: { actions, resources } } (text, sorted). */
function statementsOf(prefix: string, app: SynthesizedApp = defaultApp()) {
  const policy = resourceAt(app.provisioningTemplate, "AWS::IAM::Policy", prefix).Properties;
  const bySid: Record<string, { actions: string[]; resources: string[] }> = {};
  for (const s of policy.PolicyDocument.Statement as Record<string, unknown>[]) {
    assert.equal(s.Effect, "Allow");
    const list = (v: unknown) => (Array.isArray(v) ? v : [v]).map(cfnText).sort();
    bySid[String(s.Sid ?? "logs")] = { actions: list(s.Action), resources: list(s.Resource) };
  }
  return bySid;
}

describe("lib/constructs/vending-api", () => {
  it("is a regional REST API with POST /v1/certificates proxied to the vend Lambda, no authorizer", () => {
    const { provisioningTemplate } = defaultApp();
    const api = resourceAt(provisioningTemplate, "AWS::ApiGateway::RestApi", "VendingApi").Properties;
    assert.deepEqual(api.EndpointConfiguration, { Types: ["REGIONAL"] });
    const resources = vendingApiResources(defaultApp(), "AWS::ApiGateway::Resource");
    assert.deepEqual(resources.map((r) => r.Properties.PathPart).sort(), [
      "auth",
      "certificates",
      "device",
      "register",
      "v1",
    ]);
    assert.deepEqual(Object.keys(methods()).sort(), ["registerDevice", "vendCertificate"]);
    const method = methods().vendCertificate!;
    assert.equal(method.HttpMethod, "POST");
    assert.equal(method.AuthorizationType, "NONE");
    assert.equal(method.OperationName, "vendCertificate");
    assert.equal(method.Integration.Type, "AWS_PROXY");
    assert.match(
      cfnText(method.Integration.Uri),
      /:lambda:path\/2015-03-31\/functions\/\$\{VendFunction[0-9A-F]+\.Arn\}\/invocations$/,
    );
  });

  it("throttles the stage (defaults 100 rps, burst 200: above the provisioning budget) and takes the limits from context", () => {
    const settings = (app = defaultApp()) =>
      resourceAt(app.provisioningTemplate, "AWS::ApiGateway::Stage", "VendingApiDeploymentStageprod")
        .Properties.MethodSettings;
    assert.equal(settings().length, 1);
    assert.equal(settings()[0].HttpMethod, "*");
    assert.equal(settings()[0].ResourcePath, "/*");
    assert.equal(settings()[0].ThrottlingRateLimit, 100);
    assert.equal(settings()[0].ThrottlingBurstLimit, 200);
    assert.equal(settings()[0].DataTraceEnabled, false);
    assert.equal(settings(fullOptionsApp())[0].ThrottlingRateLimit, 5);
    assert.equal(settings(fullOptionsApp())[0].ThrottlingBurstLimit, 7);
  });

  it("writes JSON access logs (no bodies) to its own log group", () => {
    const { provisioningTemplate } = defaultApp();
    const stage = resourceAt(
      provisioningTemplate,
      "AWS::ApiGateway::Stage",
      "VendingApiDeploymentStageprod",
    ).Properties;
    assert.match(
      cfnText(stage.AccessLogSetting.DestinationArn),
      /^\$\{VendingApiAccessLogs[0-9A-F]+\.Arn\}$/,
    );
    const format = JSON.parse(stage.AccessLogSetting.Format);
    assert.equal(format.requestId, "$context.requestId");
    assert.equal(format.status, "$context.status");
    assert.ok(!stage.AccessLogSetting.Format.includes("$input"), "never log the body");
    assert.equal(stage.MethodSettings[0].LoggingLevel, "OFF");
  });

  it("validates the body against the VendRequest model derived from the Lambda's schema", () => {
    const { provisioningTemplate } = defaultApp();
    const validator = resourceAt(
      provisioningTemplate,
      "AWS::ApiGateway::RequestValidator",
      "VendingApiBodyValidator",
    ).Properties;
    assert.equal(validator.ValidateRequestBody, true);
    const model = onlyResource(provisioningTemplate, "AWS::ApiGateway::Model").Properties;
    assert.equal(model.ContentType, "application/json");
    assert.equal(model.Schema.$schema, "http://json-schema.org/draft-04/schema#");
    assert.deepEqual(model.Schema.required, [
      "serialNumber",
      "productKey",
      "timestamp",
      "nonce",
      "signature",
    ]);
    assert.equal(model.Schema.additionalProperties, false);
    assert.deepEqual(model.Schema.properties.keyMode.enum, ["csr", "server"]);
    assert.equal(model.Schema.properties.signature.pattern, "^[0-9a-fA-F]{64}$");
    // The 16 KiB limit (413) belongs to the Lambda: no length limit may turn it into a 400 here.
    assert.ok(!JSON.stringify(model.Schema).includes("maxLength"));
    const method = methods().vendCertificate!;
    assert.deepEqual(Object.keys(method.RequestModels), ["application/json"]);
    const vendValidatorId = logicalIdAt(
      provisioningTemplate,
      "AWS::ApiGateway::RequestValidator",
      "VendingApiBodyValidator",
    );
    assert.deepEqual(method.RequestValidatorId, { Ref: vendValidatorId });
  });

  it("answers gateway errors in the API's error shape", () => {
    const responses = Object.values(
      vendingApiResources(defaultApp(), "AWS::ApiGateway::GatewayResponse"),
    ).map((r) => r.Properties);
    const byType = Object.fromEntries(responses.map((r) => [r.ResponseType, r]));
    assert.deepEqual(Object.keys(byType).sort(), [
      "BAD_REQUEST_BODY",
      "BAD_REQUEST_PARAMETERS",
      "DEFAULT_4XX",
      "DEFAULT_5XX",
      "THROTTLED",
    ]);
    const body = JSON.parse(byType.BAD_REQUEST_BODY.ResponseTemplates["application/json"]);
    assert.equal(body.error.code, "INVALID_REQUEST");
    assert.equal(byType.THROTTLED.StatusCode, "429");
    assert.equal(
      JSON.parse(byType.DEFAULT_5XX.ResponseTemplates["application/json"]).error.code,
      "UNAVAILABLE",
    );
    for (const r of responses)
      assert.equal(r.ResponseParameters["gatewayresponse.header.Content-Type"], "'application/json'");
  });

  it("exports the API URLs and the data endpoint hint", () => {
    const outputs = defaultApp().provisioningTemplate.toJSON().Outputs;
    assert.deepEqual(outputs.VendApiUrl.Export, { Name: "IotOnramp-VendApiUrl" });
    assert.match(cfnText(outputs.VendEndpointUrl.Value), /\/v1\/certificates$/);
    assert.deepEqual(outputs.VendEndpointUrl.Export, { Name: "IotOnramp-VendEndpointUrl" });
    assert.equal(
      cfnText(outputs.DataEndpointHint.Value),
      "aws iot describe-endpoint --endpoint-type iot:Data-ATS --region ${AWS::Region}",
    );
    assert.deepEqual(outputs.DataEndpointHint.Export, { Name: "IotOnramp-DataEndpointHint" });
    assert.equal(outputs.CustomDomainTarget, undefined);
  });

  it("adds the custom domain, WAF association and execution logs when configured", () => {
    const { provisioningTemplate } = fullOptionsApp();
    provisioningTemplate.hasResourceProperties("AWS::ApiGateway::DomainName", {
      DomainName: FULL_OPTIONS_CONTEXT.domainName,
      RegionalCertificateArn: FULL_OPTIONS_CONTEXT.certificateArn,
      EndpointConfiguration: { Types: ["REGIONAL"] },
      SecurityPolicy: "TLS_1_2",
    });
    provisioningTemplate.resourceCountIs("AWS::ApiGateway::BasePathMapping", 1);
    provisioningTemplate.hasResourceProperties("AWS::WAFv2::WebACLAssociation", {
      WebACLArn: FULL_OPTIONS_CONTEXT.wafWebAclArn,
    });
    const stage = resourceAt(
      provisioningTemplate,
      "AWS::ApiGateway::Stage",
      "VendingApiDeploymentStageprod",
    ).Properties;
    assert.equal(stage.MethodSettings[0].LoggingLevel, "ERROR");
    assert.equal(stage.MethodSettings[0].DataTraceEnabled, false);
    provisioningTemplate.resourceCountIs("AWS::ApiGateway::Account", 1);
    assert.ok(provisioningTemplate.toJSON().Outputs.CustomDomainTarget);
  });

  it("routes POST /auth/register/device (Alibaba's path) to the registration Lambda, no authorizer", () => {
    assert.equal(REGISTER_DEVICE_PATH, ALIYUN_REGISTER_PATH);
    assert.equal(REGISTER_DEVICE_PATH, "/auth/register/device");
    assert.notEqual(REGISTER_DEVICE_PATH, VEND_PATH);
    const method = methods().registerDevice!;
    assert.equal(method.HttpMethod, "POST");
    assert.equal(method.AuthorizationType, "NONE");
    assert.equal(method.Integration.Type, "AWS_PROXY");
    assert.match(
      cfnText(method.Integration.Uri),
      /:lambda:path\/2015-03-31\/functions\/\$\{RegisterDeviceFunction[0-9A-F]+\.Arn\}\/invocations$/,
    );
    const { provisioningTemplate } = defaultApp();
    const permissions = Object.values(provisioningTemplate.findResources("AWS::Lambda::Permission"))
      .map((p) => p.Properties)
      .filter((p) => /RegisterDeviceFunction/.test(cfnText(p.FunctionName)));
    assert.ok(permissions.length > 0);
    for (const permission of permissions) {
      assert.equal(permission.Principal, "apigateway.amazonaws.com");
      assert.match(cfnText(permission.SourceArn), /\/POST\/auth\/register\/device$/);
    }
  });

  it("requires a Content-Type header on the form route (a JSON-schema model cannot check a form body)", () => {
    const method = methods().registerDevice!;
    assert.deepEqual(method.RequestParameters, { "method.request.header.Content-Type": true });
    assert.equal(method.RequestModels, undefined);
    const { provisioningTemplate } = defaultApp();
    const validatorId = logicalIdAt(
      provisioningTemplate,
      "AWS::ApiGateway::RequestValidator",
      "VendingApiRegistrationValidator",
    );
    assert.deepEqual(method.RequestValidatorId, { Ref: validatorId });
    const validator = resourceAt(
      provisioningTemplate,
      "AWS::ApiGateway::RequestValidator",
      "VendingApiRegistrationValidator",
    ).Properties;
    assert.equal(validator.ValidateRequestParameters, true);
    assert.equal(validator.ValidateRequestBody, false);
    // The gateway's 400 for a missing header answers in the route's (Alibaba's) shape.
    const response = vendingApiResources(defaultApp(), "AWS::ApiGateway::GatewayResponse")
      .map((r) => r.Properties)
      .find((r) => r.ResponseType === "BAD_REQUEST_PARAMETERS");
    assert.equal(response?.StatusCode, "400");
    const body = JSON.parse(response?.ResponseTemplates["application/json"]);
    assert.equal(body.code, 400);
    assert.equal(body.errorCode, "INVALID_REQUEST");
    assert.match(body.message, /application\/x-www-form-urlencoded/);
  });

  it("throttles and protects the registration route like the vend route (stage-wide settings)", () => {
    const { provisioningTemplate } = fullOptionsApp();
    const stage = resourceAt(
      provisioningTemplate,
      "AWS::ApiGateway::Stage",
      "VendingApiDeploymentStageprod",
    ).Properties;
    assert.equal(stage.MethodSettings.length, 1, "no per-method override");
    assert.equal(stage.MethodSettings[0].ResourcePath, "/*");
    assert.equal(stage.MethodSettings[0].HttpMethod, "*");
    const association = resourceAt(
      defaultApp().provisioningTemplate,
      "AWS::WAFv2::WebACLAssociation",
      "VendingApiWebAcl",
    );
    assert.match(cfnText(association.Properties.ResourceArn), /\/stages\/\$\{VendingApiDeploymentStage/);
  });

  it("registration function: Node.js 22, arm64, the shared settings, within API Gateway's 29 s", () => {
    const fn = resourceAt(
      defaultApp().provisioningTemplate,
      "AWS::Lambda::Function",
      "RegisterDeviceFunction",
    ).Properties;
    assert.equal(fn.Runtime, "nodejs22.x");
    assert.deepEqual(fn.Architectures, ["arm64"]);
    assert.equal(fn.Timeout, REGISTER_DEVICE_TIMEOUT.toSeconds());
    assert.ok(fn.Timeout < 29);
    const env = fn.Environment.Variables;
    assert.match(
      cfnText(env.REGISTRY_TABLE_NAME),
      /^\$\{import:IotOnramp-Registry:ExportsOutputRefRegistryTable/,
    );
    assert.equal(env.PRODUCT_SECRET_PREFIX, "onramp/products/");
    assert.equal(env.REGISTRY_KEY_SECRET_NAME, "onramp/registry-key");
    assert.equal(env.POWERTOOLS_SERVICE_NAME, "register-device");
    assert.match(cfnText(fn.LoggingConfig.LogGroup), /^\$\{RegisterDeviceLogs[0-9A-F]+\}$/);
  });

  it("registration function: grants exactly what the HTTPS path calls (no PutItem, no IoT, no KMS for secrets)", () => {
    const statements = statementsOf("RegisterDeviceRoleDefaultPolicy");
    assert.match(statements.logs!.resources[0]!, /^\$\{RegisterDeviceLogs[0-9A-F]+\.Arn\}$/);
    const { logs: _logs, ...rest } = statements;
    assert.deepEqual(rest, {
      RegistryTableItems: { actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"], resources: [TABLE_ARN] },
      ProductSecretsAndRegistryKey: {
        actions: ["secretsmanager:GetSecretValue"],
        resources: [REGISTRY_KEY, PRODUCT_SECRETS],
      },
    });
    const withKey = statementsOf("RegisterDeviceRoleDefaultPolicy", fullOptionsApp());
    assert.ok(
      withKey.RegistryTableKey?.actions.includes("kms:GenerateDataKey"),
      "the table's key, when it has one",
    );
  });

  it("registration function: the table grants match the use case's registry calls on the HTTPS path", () => {
    // The HTTPS handler registers pre-registered devices only: authType "register", never "regnwl",
    // so registerDevice never reaches createDevice (PutItem) there.
    const handler = readFileSync(
      new URL("../../lambdas/handlers/register-device.ts", import.meta.url),
      "utf8",
    );
    assert.deepEqual(
      [...handler.matchAll(/authType: "(\w+)"/g)].map((m) => m[1]),
      ["register"],
    );
    const useCase = "lambdas/core/registration/register-device.ts";
    const called = registryMethodsCalled(useCase);
    assert.deepEqual(called, ["createDevice", "getDevice", "getProduct", "issueCredential"]);
    const source = readFileSync(new URL(`../../${useCase}`, import.meta.url), "utf8");
    assert.match(
      source,
      /if \(!device && authType === "regnwl" && auth\.allowRegnwl\) \{\n\s+await deps\.registry\.createDevice/,
    );
    const onHttpsPath = called.filter((m) => m !== "createDevice");
    assert.deepEqual(
      [...registryAdapterActions(onHttpsPath)].sort(),
      statementsOf("RegisterDeviceRoleDefaultPolicy").RegistryTableItems?.actions,
    );
    assert.deepEqual([...registryAdapterActions(["createDevice"])], ["dynamodb:PutItem"]);
  });

  it("exports the registration URL, function and log group", () => {
    const outputs = defaultApp().provisioningTemplate.toJSON().Outputs;
    assert.match(cfnText(outputs.RegisterDeviceUrl.Value), /\/auth\/register\/device$/);
    assert.deepEqual(outputs.RegisterDeviceUrl.Export, { Name: "IotOnramp-RegisterDeviceUrl" });
    assert.match(
      cfnText(outputs.RegisterDeviceFunctionName.Value),
      /^\$\{RegisterDeviceFunction[0-9A-F]+\}$/,
    );
    assert.match(cfnText(outputs.RegisterDeviceLogGroupName.Value), /^\$\{RegisterDeviceLogs[0-9A-F]+\}$/);
  });
});
