import { provisioningTemplateArn } from "#local/iot/arns.ts";
import type { IotEmulator } from "#local/iot/index.ts";
import { loadProvisioningTemplate, PROVISIONING_TEMPLATES } from "#templates/catalog.ts";
import { LOCAL_PRE_PROVISIONING_HOOK_FUNCTION } from "./fleet-provisioning.ts";

/** The role the local fleet template names (the emulator runs templates without assuming roles). */
export const LOCAL_FLEET_PROVISIONING_ROLE_ARN = "arn:aws:iam::000000000000:role/onramp-fleet-provisioning";

/**
 * Creates the fleet provisioning (by claim) template on the local stack when it is missing, as the
 * CDK stack does on AWS (lib/constructs/fleet-provisioning.ts): `fleet-claim-device` from
 * templates/provisioning/, enabled, with a pre-provisioning hook whose target is the local
 * Lambda name the MQTT endpoint maps to the real hook handler. An existing template is left as it
 * is (an operator may have changed it).
 */
export async function seedFleetProvisioningTemplate(iot: IotEmulator): Promise<void> {
  const templateName = PROVISIONING_TEMPLATES.fleetClaim;
  if (iot.state.provisioningTemplate(templateName)) return;
  const { scope } = iot.context;
  const now = iot.context.now();
  iot.state.insertProvisioningTemplate({
    templateName,
    templateArn: provisioningTemplateArn(scope, templateName),
    templateBody: loadProvisioningTemplate(templateName),
    description: "Fleet provisioning by claim (seeded by the local stack)",
    enabled: true,
    provisioningRoleArn: LOCAL_FLEET_PROVISIONING_ROLE_ARN,
    preProvisioningHook: {
      targetArn: `arn:aws:lambda:${scope.region}:${scope.accountId}:function:${LOCAL_PRE_PROVISIONING_HOOK_FUNCTION}`,
      payloadVersion: "2020-04-01",
    },
    type: "FLEET_PROVISIONING",
    defaultVersionId: 1,
    creationDate: now,
    lastModifiedDate: now,
  });
  await iot.flush();
}
