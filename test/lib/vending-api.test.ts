// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected values use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cfnText, defaultApp, FULL_OPTIONS_CONTEXT, fullOptionsApp, onlyResource } from "./app-fixture.ts";

describe("lib/constructs/vending-api", () => {
  it("is a regional REST API with POST /v1/certificates proxied to the vend Lambda, no authorizer", () => {
    const { provisioningTemplate } = defaultApp();
    const api = onlyResource(provisioningTemplate, "AWS::ApiGateway::RestApi").Properties;
    assert.deepEqual(api.EndpointConfiguration, { Types: ["REGIONAL"] });
    const resources = Object.values(provisioningTemplate.findResources("AWS::ApiGateway::Resource"));
    assert.deepEqual(resources.map((r) => r.Properties.PathPart).sort(), ["certificates", "v1"]);
    const method = onlyResource(provisioningTemplate, "AWS::ApiGateway::Method").Properties;
    assert.equal(method.HttpMethod, "POST");
    assert.equal(method.AuthorizationType, "NONE");
    assert.equal(method.OperationName, "vendCertificate");
    assert.equal(method.Integration.Type, "AWS_PROXY");
    assert.match(
      cfnText(method.Integration.Uri),
      /:lambda:path\/2015-03-31\/functions\/\$\{VendFunction[0-9A-F]+\.Arn\}\/invocations$/,
    );
  });

  it("throttles the stage (defaults 10 rps, burst 20) and takes the limits from context", () => {
    const settings = (app = defaultApp()) =>
      onlyResource(app.provisioningTemplate, "AWS::ApiGateway::Stage").Properties.MethodSettings;
    assert.equal(settings().length, 1);
    assert.equal(settings()[0].HttpMethod, "*");
    assert.equal(settings()[0].ResourcePath, "/*");
    assert.equal(settings()[0].ThrottlingRateLimit, 10);
    assert.equal(settings()[0].ThrottlingBurstLimit, 20);
    assert.equal(settings()[0].DataTraceEnabled, false);
    assert.equal(settings(fullOptionsApp())[0].ThrottlingRateLimit, 5);
    assert.equal(settings(fullOptionsApp())[0].ThrottlingBurstLimit, 7);
  });

  it("writes JSON access logs (no bodies) to its own log group", () => {
    const { provisioningTemplate } = defaultApp();
    const stage = onlyResource(provisioningTemplate, "AWS::ApiGateway::Stage").Properties;
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
    const validator = onlyResource(provisioningTemplate, "AWS::ApiGateway::RequestValidator").Properties;
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
    const method = onlyResource(provisioningTemplate, "AWS::ApiGateway::Method").Properties;
    assert.deepEqual(Object.keys(method.RequestModels), ["application/json"]);
    assert.ok(method.RequestValidatorId);
  });

  it("answers gateway errors in the API's error shape", () => {
    const responses = Object.values(
      defaultApp().provisioningTemplate.findResources("AWS::ApiGateway::GatewayResponse"),
    ).map((r) => r.Properties);
    const byType = Object.fromEntries(responses.map((r) => [r.ResponseType, r]));
    assert.deepEqual(Object.keys(byType).sort(), [
      "BAD_REQUEST_BODY",
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
    const stage = onlyResource(provisioningTemplate, "AWS::ApiGateway::Stage").Properties;
    assert.equal(stage.MethodSettings[0].LoggingLevel, "ERROR");
    assert.equal(stage.MethodSettings[0].DataTraceEnabled, false);
    provisioningTemplate.resourceCountIs("AWS::ApiGateway::Account", 1);
    assert.ok(provisioningTemplate.toJSON().Outputs.CustomDomainTarget);
  });
});
