import { Duration, RemovalPolicy, Stack, Token, Validations } from "aws-cdk-lib";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  ObjectOwnership,
} from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { iotProvisioningStatements, REGISTER_THING_ACTIONS } from "../iam-grants.ts";

/** Key prefixes of the bulk provisioning bucket (`onramp bulk provision` writes them). */
export const BULK_PREFIXES = { params: "params/", reports: "reports/" } as const;

/** Settings of {@link BulkProvisioning}. */
export type BulkProvisioningProps = {
  /** The IoT policies the bulk template attaches by name. */
  devicePolicyNames: readonly string[];
  /** Thing grants on `thing/{prefix}*`; default any thing. */
  thingNamePrefix?: string;
  /** Days parameter files (serials and CSRs) are kept; default 7. */
  paramsExpirationDays?: number;
  /** Days run reports (per-device outcomes, no certificates) are kept; default 90. */
  reportsExpirationDays?: number;
  removalPolicy?: RemovalPolicy;
};

/**
 * Bulk provisioning (https://docs.aws.amazon.com/iot/latest/developerguide/bulk-provisioning.html):
 * the bucket `onramp bulk provision` uploads parameter files to (`params/`, one JSON object per
 * line) and keeps run summaries in (`reports/`), and the role StartThingRegistrationTask's
 * `roleArn` names, which AWS IoT assumes to read the file and run the template on each line.
 *
 * Bucket: S3-managed encryption, TLS only (`aws:SecureTransport`), every public access blocked,
 * bucket-owner-enforced ownership (no ACLs), lifecycle rules expiring `params/` and `reports/`.
 * Role: trusted by `iot.amazonaws.com` for this account and region only (confused-deputy
 * conditions, as the JITP role); `s3:GetObject` on `params/*` of this bucket only; the IoT actions
 * the bulk template (templates/bulk/bulk-device.json) needs: RegisterThing and
 * CreateCertificateFromCsr (no resource type), the thing and certificate actions on thing/* and
 * cert/*, GetPolicy on the device policy.
 */
export class BulkProvisioning extends Construct {
  readonly bucket: Bucket;
  readonly role: Role;

  constructor(scope: Construct, id: string, props: BulkProvisioningProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.bucket = new Bucket(this, "Bucket", {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: "ExpireParameterFiles",
          prefix: BULK_PREFIXES.params,
          expiration: Duration.days(props.paramsExpirationDays ?? 7),
        },
        {
          id: "ExpireReports",
          prefix: BULK_PREFIXES.reports,
          expiration: Duration.days(props.reportsExpirationDays ?? 90),
        },
        { id: "AbortIncompleteUploads", abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    this.role = new Role(this, "RegistrationRole", {
      assumedBy: new ServicePrincipal("iot.amazonaws.com", {
        conditions: {
          StringEquals: { "aws:SourceAccount": stack.account },
          ArnLike: { "aws:SourceArn": stack.formatArn({ service: "iot", resource: "*" }) },
        },
      }),
      description:
        "iot-onramp: AWS IoT runs bulk registration tasks (StartThingRegistrationTask) with this role",
    });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "ReadParameterFiles",
        actions: ["s3:GetObject"],
        resources: [this.bucket.arnForObjects(`${BULK_PREFIXES.params}*`)],
      }),
    );
    const statements = iotProvisioningStatements(this, {
      certificate: REGISTER_THING_ACTIONS.certificate,
      thing: REGISTER_THING_ACTIONS.thing,
      devicePolicyNames: props.devicePolicyNames,
      ...(props.thingNamePrefix ? { thingNamePrefix: props.thingNamePrefix } : {}),
      withoutResourceType: ["iot:RegisterThing", "iot:CreateCertificateFromCsr"],
    });
    for (const statement of statements) this.role.addToPrincipalPolicy(statement);

    Validations.of(this.bucket).acknowledge({
      id: "AwsSolutions-S1",
      reason:
        "No server access logs: the bucket holds only serial numbers and CSRs (public keys) written by the operator's CLI and read by AWS IoT through the registration role; S3 data events in CloudTrail record who read or wrote what, without a second log bucket to secure.",
    });
    const part = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);
    const iot = `arn:${part(stack.partition, "Partition")}:iot:${part(stack.region, "Region")}:${part(stack.account, "AccountId")}`;
    const bucketId = stack.getLogicalId(this.bucket.node.defaultChild as CfnBucket);
    const iam5 = (resource: string, reason: string) =>
      Validations.of(this.role).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason });
    iam5(
      `<${bucketId}.Arn>/${BULK_PREFIXES.params}*`,
      "s3:GetObject on params/* of this bucket only: each run uploads a new parameter file under params/, named per run, which AWS IoT reads.",
    );
    iam5(
      "*",
      "Only iot:RegisterThing and iot:CreateCertificateFromCsr, which have no resource type in the Service Authorization Reference (lib/iam-allow-list.ts): the task creates each certificate from the line's CSR.",
    );
    iam5(
      `${iot}:cert/*`,
      "IoT certificates of this account and region only: certificate ids exist only once the task creates them, and the cert resource type has no condition key, so no ARN or tag can name them in advance.",
    );
    iam5(
      `${iot}:thing/${props.thingNamePrefix ?? ""}*`,
      "IoT things of this account and region only (under the configured thing-name prefix when one is set): the thing resource type has no condition key, and the things are named by the serials of the parameter file.",
    );
  }
}
