// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected values use ${AWS::…} placeholders (cfnText).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WAF_RULES } from "#lib/constructs/vending-api-waf.ts";
import {
  appWithContext,
  cfnText,
  defaultApp,
  FULL_OPTIONS_CONTEXT,
  fullOptionsApp,
  logicalIdAt,
  onlyResource,
  resourceAt,
  resourcesOfType,
} from "./app-fixture.ts";

const noWafApp = () => appWithContext("no-waf", { waf: "false" });
const rateLimitApp = () => appWithContext("waf-limit", { wafRateLimit: "1200" });

describe("lib/constructs/vending-api-waf", () => {
  it("by default creates a regional web ACL whose first rule blocks a source IP over 300 requests / 5 min with 429", () => {
    const acl = onlyResource(defaultApp().provisioningTemplate, "AWS::WAFv2::WebACL").Properties;
    assert.equal(acl.Scope, "REGIONAL");
    assert.deepEqual(acl.DefaultAction, { Allow: {} });
    const rate = acl.Rules.find((r: { Name: string }) => r.Name === WAF_RULES.ratePerIp);
    assert.ok(rate, "rate rule");
    assert.equal(rate.Priority, 0);
    assert.deepEqual(rate.Statement, {
      RateBasedStatement: { AggregateKeyType: "IP", Limit: 300, EvaluationWindowSec: 300 },
    });
    assert.equal(rate.Action.Block.CustomResponse.ResponseCode, 429);
    const bodyKey = rate.Action.Block.CustomResponse.CustomResponseBodyKey;
    const body = acl.CustomResponseBodies[bodyKey];
    assert.equal(body.ContentType, "APPLICATION_JSON");
    assert.equal(JSON.parse(body.Content).error.code, "THROTTLED", "the API's error shape");
    assert.equal(rate.VisibilityConfig.CloudWatchMetricsEnabled, true);
    assert.equal(acl.VisibilityConfig.SampledRequestsEnabled, true);
  });

  it("adds only the free Amazon IP reputation managed group, after the rate rule", () => {
    const acl = onlyResource(defaultApp().provisioningTemplate, "AWS::WAFv2::WebACL").Properties;
    const managed = acl.Rules.filter(
      (r: { Statement: object }) => "ManagedRuleGroupStatement" in r.Statement,
    );
    assert.deepEqual(
      managed.map(
        (r: { Statement: { ManagedRuleGroupStatement: unknown } }) => r.Statement.ManagedRuleGroupStatement,
      ),
      [{ VendorName: "AWS", Name: "AWSManagedRulesAmazonIpReputationList" }],
    );
    assert.equal(managed[0].Priority, 1);
    assert.deepEqual(managed[0].OverrideAction, { None: {} });
    assert.equal(acl.Rules.length, 2, "two billed rules");
  });

  it("is associated with the vending API's stage", () => {
    const template = defaultApp().provisioningTemplate;
    const association = resourceAt(template, "AWS::WAFv2::WebACLAssociation", "VendingApiWebAcl").Properties;
    const aclId = logicalIdAt(template, "AWS::WAFv2::WebACL", "VendingApiWafWebAcl");
    assert.equal(cfnText(association.WebACLArn), `\${${aclId}.Arn}`);
    const stageId = Object.keys(resourcesOfType(template, "AWS::ApiGateway::Stage"))[0];
    const apiId = Object.keys(resourcesOfType(template, "AWS::ApiGateway::RestApi"))[0];
    assert.equal(
      cfnText(association.ResourceArn),
      `arn:\${AWS::Partition}:apigateway:\${AWS::Region}::/restapis/\${${apiId}}/stages/\${${stageId}}`,
    );
  });

  it("logs blocked and counted requests to an aws-waf-logs-* group with the app's retention", () => {
    const template = defaultApp().provisioningTemplate;
    const logging = onlyResource(template, "AWS::WAFv2::LoggingConfiguration").Properties;
    const aclId = logicalIdAt(template, "AWS::WAFv2::WebACL", "VendingApiWafWebAcl");
    assert.equal(cfnText(logging.ResourceArn), `\${${aclId}.Arn}`);
    const groupId = logicalIdAt(template, "AWS::Logs::LogGroup", "VendingApiWafLogs");
    // The log group's ARN without the ":*" suffix of its Arn attribute, as WAF wants it.
    assert.deepEqual(logging.LogDestinationConfigs.map(cfnText), [
      `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:\${${groupId}}`,
    ]);
    assert.deepEqual(logging.LoggingFilter, {
      DefaultBehavior: "DROP",
      Filters: [
        {
          Behavior: "KEEP",
          Requirement: "MEETS_ANY",
          Conditions: [{ ActionCondition: { Action: "BLOCK" } }, { ActionCondition: { Action: "COUNT" } }],
        },
      ],
    });
    const group = resourcesOfType(template, "AWS::Logs::LogGroup")[groupId];
    assert.ok(group);
    assert.match(
      cfnText(group.Properties.LogGroupName),
      /^aws-waf-logs-IotOnramp-Provisioning-.*AWS::StackId/,
    );
    assert.equal(group.Properties.RetentionInDays, 365);
  });

  it("takes the per-IP limit from context wafRateLimit", () => {
    const acl = onlyResource(rateLimitApp().provisioningTemplate, "AWS::WAFv2::WebACL").Properties;
    assert.equal(acl.Rules[0].Statement.RateBasedStatement.Limit, 1200);
  });

  it("creates no web ACL and no association with waf=false", () => {
    const template = noWafApp().provisioningTemplate;
    template.resourceCountIs("AWS::WAFv2::WebACL", 0);
    template.resourceCountIs("AWS::WAFv2::WebACLAssociation", 0);
    template.resourceCountIs("AWS::WAFv2::LoggingConfiguration", 0);
  });

  it("associates an existing web ACL (wafWebAclArn) instead of creating one", () => {
    const template = fullOptionsApp().provisioningTemplate;
    template.resourceCountIs("AWS::WAFv2::WebACL", 0);
    const association = resourceAt(template, "AWS::WAFv2::WebACLAssociation", "VendingApiWebAcl").Properties;
    assert.equal(association.WebACLArn, FULL_OPTIONS_CONTEXT.wafWebAclArn);
  });
});
