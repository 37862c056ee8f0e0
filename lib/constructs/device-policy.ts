import { CfnPolicy } from "aws-cdk-lib/aws-iot";
import { Construct } from "constructs";
import { DEVICE_POLICY_DOCUMENT, DEVICE_POLICY_NAME, loadPolicyDocument } from "#templates/catalog.ts";

/**
 * The one IoT policy every provisioned device gets (attached by name from the provisioning
 * templates). The document is `templates/policies/device-policy.json`, the file the local stack
 * loads too; policy variables such as `${iot:Connection.Thing.ThingName}` pass through as written
 * (CloudFormation only substitutes inside `Fn::Sub`).
 */
export class DevicePolicy extends Construct {
  /** The policy. */
  readonly policy: CfnPolicy;
  /** Its name (`onramp-device-policy`): templates and IAM refer to it. */
  readonly policyName: string = DEVICE_POLICY_NAME;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.policy = new CfnPolicy(this, "Policy", {
      policyName: DEVICE_POLICY_NAME,
      policyDocument: JSON.parse(loadPolicyDocument(DEVICE_POLICY_DOCUMENT)),
    });
  }
}
