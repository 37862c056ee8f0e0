import type { IRole } from "aws-cdk-lib/aws-iam";
import { CfnProvisioningTemplate } from "aws-cdk-lib/aws-iot";
import { Construct } from "constructs";
import { loadProvisioningTemplate, PROVISIONING_TEMPLATES } from "#templates/catalog.ts";

/** Settings of {@link JitpProvisioning}. */
export type JitpProvisioningProps = {
  /** The role AWS IoT runs the template with (an {@link IotProvisioningRole}). */
  provisioningRole: IRole;
};

/**
 * Just-in-time provisioning on AWS. A JITP template only takes effect once it is attached to a CA
 * (RegisterCACertificate / UpdateCACertificate `registrationConfig`), which is the operator's step
 * (`onramp ca register --jitp`), not CloudFormation's: the CA and its private key never pass
 * through the stack. What the stack provides:
 *
 * - the role AWS IoT assumes to run the template (passed in; output `JitpRoleArn`), and
 * - the template itself as an `AWS::IoT::ProvisioningTemplate` of type `JITP`, named after its
 *   catalog file (`jitp-device`, output `JitpTemplateName`), body from
 *   `templates/provisioning/jitp-device.json`, the file the local stack uses.
 *
 * A CA can then be registered with `registrationConfig: { templateName: "jitp-device" }`: AWS IoT
 * runs the deployed template with the role recorded on it, so a template change is one stack
 * update instead of an UpdateCACertificate per CA. Passing `{ templateBody, roleArn }` (the body
 * from the catalog, the role from the output) still works for CAs registered that way.
 *
 * The name is fixed, like the device policy's: one deployment per account and region.
 */
export class JitpProvisioning extends Construct {
  /** The JITP provisioning template. */
  readonly template: CfnProvisioningTemplate;
  /** Its name (`jitp-device`): `registrationConfig.templateName`. */
  readonly templateName: string = PROVISIONING_TEMPLATES.jitp;

  constructor(scope: Construct, id: string, props: JitpProvisioningProps) {
    super(scope, id);
    this.template = new CfnProvisioningTemplate(this, "Template", {
      templateName: this.templateName,
      templateType: "JITP",
      description: "iot-onramp just-in-time provisioning (templates/provisioning/jitp-device.json)",
      templateBody: loadProvisioningTemplate(this.templateName),
      provisioningRoleArn: props.provisioningRole.roleArn,
      enabled: true,
    });
    // The role's policy must be in place before AWS IoT may run the template with it.
    this.template.node.addDependency(props.provisioningRole);
  }
}
