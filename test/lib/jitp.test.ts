import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadProvisioningTemplate, PROVISIONING_TEMPLATES } from "#templates/catalog.ts";
import { cfnText, defaultApp, logicalIdAt, resourceAt } from "./app-fixture.ts";

describe("lib/constructs/jitp", () => {
  const template = () => defaultApp().provisioningTemplate;

  it("deploys templates/provisioning/jitp-device.json as a JITP template named jitp-device", () => {
    const jitp = resourceAt(template(), "AWS::IoT::ProvisioningTemplate", "JitpTemplate").Properties;
    assert.equal(jitp.TemplateName, PROVISIONING_TEMPLATES.jitp);
    assert.equal(jitp.TemplateType, "JITP");
    assert.equal(jitp.Enabled, true);
    assert.equal(jitp.TemplateBody, loadProvisioningTemplate(PROVISIONING_TEMPLATES.jitp));
    assert.equal(jitp.PreProvisioningHook, undefined, "hooks are for fleet templates only");
  });

  it("runs with the IoT provisioning role, created (with its policy) before the template", () => {
    const resource =
      template().toJSON().Resources[
        logicalIdAt(template(), "AWS::IoT::ProvisioningTemplate", "JitpTemplate")
      ];
    const roleId = logicalIdAt(template(), "AWS::IAM::Role", "IotProvisioningRole");
    assert.equal(cfnText(resource.Properties.ProvisioningRoleArn), `\${${roleId}.Arn}`);
    const policyId = logicalIdAt(template(), "AWS::IAM::Policy", "IotProvisioningRoleDefaultPolicy");
    assert.ok(resource.DependsOn.includes(roleId));
    assert.ok(resource.DependsOn.includes(policyId));
  });

  it("exports the template name for `registrationConfig.templateName`", () => {
    const outputs = template().toJSON().Outputs;
    assert.equal(outputs.JitpTemplateName.Value, "jitp-device");
    assert.deepEqual(outputs.JitpTemplateName.Export, { Name: "IotOnramp-JitpTemplateName" });
  });
});
