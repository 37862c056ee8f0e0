import { Stack } from "aws-cdk-lib";
import { Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";
import { iotProvisioningStatements, REGISTER_THING_ACTIONS } from "../iam-grants.ts";

/** Settings of {@link IotProvisioningRole}. */
export type IotProvisioningRoleProps = {
  /** The IoT policies the templates attach by name. */
  devicePolicyNames: readonly string[];
  /** Thing grants on `thing/{prefix}*` (lib/config.ts `thingNamePrefix`); default any thing. */
  thingNamePrefix?: string;
};

/**
 * The role AWS IoT assumes to run a provisioning template on our behalf: the JITP template (on a
 * device's first connection with a certificate of a registered CA) and the fleet provisioning
 * template (on a claim device's provision request). Both shipped templates create the same things
 * (a thing named after the device, the certificate by id, the shared device policy by name), so one
 * role serves both.
 *
 * Its permissions are the actions of AWS's `AWSIoTThingsRegistration` managed policy that these
 * templates use (lib/iam-grants.ts `REGISTER_THING_ACTIONS`), scoped to `cert/*`, `thing/*` and the
 * device policy instead of `*`; only `iot:RegisterThing`, which has no resource type, is on `*`
 * (lib/iam-allow-list.ts). No RegisterCertificate: JITP's certificate is already registered
 * (auto-registration) and fleet provisioning's is created by AWS IoT; both templates refer to it by
 * `AWS::IoT::Certificate::Id`.
 *
 * The trust policy admits only AWS IoT acting for this account and region (`aws:SourceAccount`,
 * `aws:SourceArn` = `arn:…:iot:{region}:{account}:*`), AWS IoT's confused-deputy guidance.
 */
export class IotProvisioningRole extends Construct {
  /** The role; pass `role.roleArn` as `provisioningRoleArn` / JITP `roleArn`. */
  readonly role: Role;

  constructor(scope: Construct, id: string, props: IotProvisioningRoleProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.role = new Role(this, "Role", {
      assumedBy: new ServicePrincipal("iot.amazonaws.com", {
        conditions: {
          StringEquals: { "aws:SourceAccount": stack.account },
          ArnLike: { "aws:SourceArn": stack.formatArn({ service: "iot", resource: "*" }) },
        },
      }),
      description: "iot-onramp: AWS IoT runs the JITP and fleet provisioning templates with this role",
    });
    const statements = iotProvisioningStatements(this, {
      certificate: REGISTER_THING_ACTIONS.certificate,
      thing: REGISTER_THING_ACTIONS.thing,
      devicePolicyNames: props.devicePolicyNames,
      ...(props.thingNamePrefix ? { thingNamePrefix: props.thingNamePrefix } : {}),
      withoutResourceType: ["iot:RegisterThing"],
    });
    for (const statement of statements) this.role.addToPrincipalPolicy(statement);
  }
}
