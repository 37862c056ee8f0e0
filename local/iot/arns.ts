/** ARNs of the emulated account and region. */
export type ArnScope = { region: string; accountId: string };

/** `arn:aws:iot:{region}:{account}:{resource}`. */
export const iotArn = (scope: ArnScope, resource: string) =>
  `arn:aws:iot:${scope.region}:${scope.accountId}:${resource}`;

export const certificateArn = (scope: ArnScope, id: string) => iotArn(scope, `cert/${id}`);
export const caCertificateArn = (scope: ArnScope, id: string) => iotArn(scope, `cacert/${id}`);
export const thingArn = (scope: ArnScope, name: string) => iotArn(scope, `thing/${name}`);
export const policyArn = (scope: ArnScope, name: string) => iotArn(scope, `policy/${name}`);
export const thingTypeArn = (scope: ArnScope, name: string) => iotArn(scope, `thingtype/${name}`);
export const thingGroupArn = (scope: ArnScope, name: string) => iotArn(scope, `thinggroup/${name}`);
export const topicRuleArn = (scope: ArnScope, name: string) => iotArn(scope, `rule/${name}`);
export const provisioningTemplateArn = (scope: ArnScope, name: string) =>
  iotArn(scope, `provisioningtemplate/${name}`);

/** The certificate id of a certificate ARN of any region/account, or undefined. */
export function certificateIdFromArn(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:iot:[a-z0-9-]*:\d*:cert\/([0-9a-f]{64})$/.exec(arn)?.[1];
}

/** The group name of a thing group ARN of any region/account, or undefined. */
export function thingGroupNameFromArn(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:iot:[a-z0-9-]*:\d*:thinggroup\/([a-zA-Z0-9:_-]{1,128})$/.exec(arn)?.[1];
}

/** The thing name of a thing ARN of any region/account, or undefined. */
export function thingNameFromArn(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:iot:[a-z0-9-]*:\d*:thing\/([a-zA-Z0-9:_-]{1,128})$/.exec(arn)?.[1];
}
