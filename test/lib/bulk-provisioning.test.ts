import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OUTPUTS } from "#lib/outputs.ts";
import { appWithContext, cfnText, defaultApp, logicalIdAt, resourceAt } from "./app-fixture.ts";

type Statement = {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
};

describe("lib/constructs/bulk-provisioning", () => {
  const template = () => defaultApp().provisioningTemplate;
  const statements = (t = template()) =>
    resourceAt(t, "AWS::IAM::Policy", "BulkProvisioningRegistrationRoleDefaultPolicy").Properties
      .PolicyDocument.Statement as Statement[];
  const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

  it("the bucket: S3-managed encryption, every public access blocked, no ACLs, retained", () => {
    const bucket = resourceAt(template(), "AWS::S3::Bucket", "BulkProvisioningBucket");
    assert.deepEqual(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration, [
      { ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } },
    ]);
    assert.deepEqual(bucket.Properties.PublicAccessBlockConfiguration, {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    assert.deepEqual(bucket.Properties.OwnershipControls, {
      Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }],
    });
    assert.equal((bucket as { DeletionPolicy?: string }).DeletionPolicy, "Retain");
  });

  it("lifecycle: parameter files expire after 7 days, reports after 90, incomplete uploads after 1", () => {
    const rules = resourceAt(template(), "AWS::S3::Bucket", "BulkProvisioningBucket").Properties
      .LifecycleConfiguration.Rules as Array<Record<string, unknown>>;
    const byId = Object.fromEntries(rules.map((r) => [r.Id, r]));
    assert.deepEqual(
      [byId.ExpireParameterFiles?.Prefix, byId.ExpireParameterFiles?.ExpirationInDays],
      ["params/", 7],
    );
    assert.deepEqual([byId.ExpireReports?.Prefix, byId.ExpireReports?.ExpirationInDays], ["reports/", 90]);
    assert.deepEqual(byId.AbortIncompleteUploads?.AbortIncompleteMultipartUpload, { DaysAfterInitiation: 1 });
    for (const rule of rules) assert.equal(rule.Status, "Enabled");
  });

  it("TLS only: the bucket policy denies every request without aws:SecureTransport", () => {
    const policy = resourceAt(template(), "AWS::S3::BucketPolicy", "BulkProvisioningBucketPolicy");
    const deny = (policy.Properties.PolicyDocument.Statement as Statement[]).find((s) => s.Effect === "Deny");
    assert.deepEqual(deny?.Condition, { Bool: { "aws:SecureTransport": "false" } });
    assert.equal(actions(deny as Statement)[0], "s3:*");
  });

  it("the role is assumed by AWS IoT of this account and region only", () => {
    const role = resourceAt(template(), "AWS::IAM::Role", "BulkProvisioningRegistrationRole");
    const [trust] = role.Properties.AssumeRolePolicyDocument.Statement as Statement[];
    assert.deepEqual((trust as unknown as { Principal: unknown }).Principal, {
      Service: "iot.amazonaws.com",
    });
    const condition = trust?.Condition as Record<string, Record<string, unknown>>;
    assert.ok(condition.StringEquals?.["aws:SourceAccount"]);
    assert.match(cfnText(condition.ArnLike?.["aws:SourceArn"]), /:iot:.*:\*$/);
  });

  it("S3: GetObject on params/* of its own bucket only; nothing else on S3", () => {
    const s3 = statements().filter((s) => actions(s).some((a) => a.startsWith("s3:")));
    assert.equal(s3.length, 1);
    assert.deepEqual(actions(s3[0] as Statement), ["s3:GetObject"]);
    const bucketId = logicalIdAt(template(), "AWS::S3::Bucket", "BulkProvisioningBucket");
    assert.equal(cfnText(s3[0]?.Resource), `\${${bucketId}.Arn}/params/*`);
  });

  it("IoT: only RegisterThing and CreateCertificateFromCsr on *, things and certificates by ARN, GetPolicy on the device policy", () => {
    const star = statements().filter((s) => s.Resource === "*");
    assert.deepEqual(star.flatMap(actions).sort(), ["iot:CreateCertificateFromCsr", "iot:RegisterThing"]);
    const text = JSON.stringify(statements());
    for (const action of [
      "iot:CreateThing",
      "iot:AttachThingPrincipal",
      "iot:AttachPolicy",
      "iot:GetPolicy",
    ]) {
      assert.ok(text.includes(action), action);
    }
    for (const forbidden of [
      "iot:DeleteThing",
      "iot:DeleteCertificate",
      "iot:CreateKeysAndCertificate",
      "iam:PassRole",
    ]) {
      assert.ok(!text.includes(forbidden), forbidden);
    }
  });

  it("with a thing-name prefix, thing grants name it", () => {
    const t = appWithContext("thing-prefix", { thingNamePrefix: "ACME-" }).provisioningTemplate;
    assert.match(JSON.stringify(statements(t)), /thing\/ACME-\*/);
  });

  it("outputs the bucket name and the role ARN for the CLI", () => {
    const outputs = template().toJSON().Outputs as Record<string, { Value: unknown }>;
    const bucketId = logicalIdAt(template(), "AWS::S3::Bucket", "BulkProvisioningBucket");
    const roleId = logicalIdAt(template(), "AWS::IAM::Role", "BulkProvisioningRegistrationRole");
    assert.equal(cfnText(outputs[OUTPUTS.bulkProvisioningBucketName]?.Value), `\${${bucketId}}`);
    assert.equal(cfnText(outputs[OUTPUTS.bulkRegistrationRoleArn]?.Value), `\${${roleId}.Arn}`);
  });
});
