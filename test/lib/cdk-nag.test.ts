import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { appWithContext, defaultApp, fullOptionsApp, type SynthesizedApp } from "./app-fixture.ts";

/** Every acknowledgement in the tree: construct path, rule id, reason. */
function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ""),
          reason,
        })),
      ),
  );
}

const configurations: [string, () => SynthesizedApp][] = [
  ["default settings", defaultApp],
  ["every option on", fullOptionsApp],
  ["WAF off", () => appWithContext("no-waf", { waf: "false" })],
  ["thing-name prefix", () => appWithContext("thing-prefix", { thingNamePrefix: "ACME-" })],
  ["CoAP gateway", () => appWithContext("coap-gateway", { coapGateway: "true" })],
  [
    "CoAP gateway, customer key and prefix",
    () =>
      appWithContext("coap-gateway-full", {
        coapGateway: "true",
        tableEncryption: "customer-managed",
        thingNamePrefix: "ACME-",
      }),
  ],
];

describe("cdk-nag (AwsSolutions) on the app", () => {
  for (const [name, app] of configurations) {
    it(`${name}: synthesizes with the AwsSolutions plugin and no unacknowledged finding`, () => {
      const { app: cdkApp, assembly } = app(); // synth throws when the plugin reports a violation
      assert.ok(assembly.stacks.length === 2);
      const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(cdkApp);
      const findings = report.violations.map(
        (v) =>
          `${v.severity} ${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(", ")}`,
      );
      assert.deepEqual(findings, [], findings.join("\n"));
      assert.equal(report.success, true);
    });

    it(`${name}: every acknowledgement is a cdk-nag rule with a written reason`, () => {
      const acks = acknowledgements(app().app).filter((a) => a.id.startsWith("AwsSolutions-"));
      assert.ok(acks.length > 0);
      for (const ack of acks) {
        assert.ok(ack.reason.trim().length >= 40, `${ack.id} at ${ack.path} needs a real reason`);
      }
    });
  }

  it("acknowledges the API authentication findings with the HMAC reason", () => {
    const acks = acknowledgements(defaultApp().app);
    const apig4 = acks.find((a) => a.id === "AwsSolutions-APIG4");
    assert.match(apig4?.reason ?? "", /HMAC/);
    assert.ok(acks.some((a) => a.id === "AwsSolutions-COG4"));
    // With a web ACL (the stack's own by default, or an existing one) there is nothing to
    // acknowledge for WAF; only turning it off needs a reason.
    assert.ok(!acks.some((a) => a.id === "AwsSolutions-APIG3"));
    assert.ok(!acknowledgements(fullOptionsApp().app).some((a) => a.id === "AwsSolutions-APIG3"));
    const off = acknowledgements(appWithContext("no-waf", { waf: "false" }).app);
    assert.match(off.find((a) => a.id === "AwsSolutions-APIG3")?.reason ?? "", /waf=false/);
  });

  it("with thingNamePrefix acknowledges thing/{prefix}* instead of thing/*", () => {
    const acks = acknowledgements(appWithContext("thing-prefix", { thingNamePrefix: "ACME-" }).app);
    const thingAcks = acks.filter((a) => a.id.includes(":thing/"));
    assert.equal(
      thingAcks.length,
      6,
      "vend, JITR, provisioning, rotation, authorizer and bulk registration roles",
    );
    for (const ack of thingAcks) assert.match(ack.id, /:thing\/ACME-\*\]$/);
  });

  it('acknowledges Resource "*" on the vend role by quoting the allow-list', () => {
    const ack = acknowledgements(defaultApp().app).find((a) => a.id === "AwsSolutions-IAM5[Resource::*]");
    assert.ok(ack);
    assert.match(ack.path, /\/Vend\/Role$/);
    for (const action of [
      "iot:CreateCertificateFromCsr",
      "iot:CreateKeysAndCertificate",
      "iot:RegisterThing",
      "iot:DescribeEndpoint",
    ]) {
      assert.ok(ack.reason.includes(action), action);
    }
  });

  it("acknowledges the JITR, provisioning-role, hook and fleet commit findings where they occur, with their reasons", () => {
    const acks = acknowledgements(defaultApp().app);
    const at = (suffix: RegExp, id: string) => acks.find((a) => suffix.test(a.path) && a.id === id);
    for (const role of [/\/Jitr\/Role$/, /\/IotProvisioningRole\/Role$/]) {
      assert.match(at(role, "AwsSolutions-IAM5[Resource::*]")?.reason ?? "", /^Only iot:RegisterThing/);
      assert.ok(
        at(
          role,
          "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*]",
        ),
      );
      assert.ok(
        at(
          role,
          "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*]",
        ),
      );
    }
    for (const fn of [
      /\/Vend\/Function$/,
      /\/Jitr\/Function$/,
      /\/Fleet\/Hook\/Function$/,
      /\/FleetCommit\/Function$/,
      /\/CertificateRotation\/Function$/,
    ]) {
      assert.match(at(fn, "AwsSolutions-L1")?.reason ?? "", /nodejs22\.x/);
    }
    for (const queue of [
      /\/Jitr\/DeadLetters$/,
      /\/FleetCommit\/DeadLetters$/,
      /\/CertificateRotation\/DeadLetters$/,
    ]) {
      assert.match(at(queue, "AwsSolutions-SQS3")?.reason ?? "", /dead-letter queue/);
    }
    // cert/* is acknowledged with the reason from lib/iam-allow-list.ts UNSCOPABLE_IOT_RESOURCES.
    assert.match(
      at(
        /\/Vend\/Role$/,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*]",
      )?.reason ?? "",
      /no condition key/,
    );
    // The hook and the commit act on cert/* (settling or committing a claim) and nothing else
    // with a wildcard but the hook's product-secret prefix; neither needs Resource "*".
    const certAck =
      "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*]";
    for (const role of [/\/Fleet\/Hook\/Role$/, /\/FleetCommit\/Role$/]) {
      assert.match(at(role, certAck)?.reason ?? "", /no condition key/);
      assert.equal(at(role, "AwsSolutions-IAM5[Resource::*]"), undefined);
    }
    assert.match(
      at(
        /\/Fleet\/Hook\/Role$/,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:onramp/products/*]",
      )?.reason ?? "",
      /GetSecretValue only/,
    );
    assert.ok(!acks.some((a) => /\/FleetCommit\/Role$/.test(a.path) && a.id.includes("secretsmanager")));
  });

  it("acknowledges the rotation role's findings: the allow-listed actions and its two answer topics", () => {
    const iot = "arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>";
    const rotationAcks = (app: SynthesizedApp) =>
      acknowledgements(app.app).filter((a) => /\/CertificateRotation\/Role$/.test(a.path));
    const acks = rotationAcks(defaultApp());
    const star = acks.find((a) => a.id === "AwsSolutions-IAM5[Resource::*]");
    for (const action of ["iot:CreateCertificateFromCsr", "iot:RegisterThing", "iot:DescribeEndpoint"]) {
      assert.ok(star?.reason.includes(action), action);
    }
    assert.ok(!star?.reason.includes("iot:CreateKeysAndCertificate"));
    for (const answer of ["accepted", "rejected"]) {
      const ack = acks.find(
        (a) => a.id === `AwsSolutions-IAM5[Resource::${iot}:topic/things/*/certificates/rotate/${answer}]`,
      );
      assert.match(ack?.reason ?? "", /^iot:Publish only/);
    }
    assert.ok(!acks.some((a) => a.id.includes("secretsmanager") || a.id.includes("rotate/required")));
    const prefixed = rotationAcks(appWithContext("thing-prefix", { thingNamePrefix: "ACME-" }));
    assert.ok(
      prefixed.some(
        (a) =>
          a.id === `AwsSolutions-IAM5[Resource::${iot}:topic/things/ACME-*/certificates/rotate/accepted]`,
      ),
    );
  });
});
