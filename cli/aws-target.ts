import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { DEFAULT_PREFIX, OUTPUT_STACK, OUTPUTS, type OutputName, stackNames } from "#lib/outputs.ts";
import { CliError } from "./cli-error.ts";
import type { Target } from "./wiring.ts";

export type AwsTargetOptions = { region?: string; profile?: string; stackPrefix?: string };

type StackOutputs = Record<string, string>;

/** Reads one stack's outputs (DescribeStacks); a missing stack is a CliError naming it. */
export async function readStackOutputs(cfn: CloudFormationClient, stackName: string): Promise<StackOutputs> {
  try {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    return Object.fromEntries(
      (Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? "", o.OutputValue ?? ""]),
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new CliError(
      `cannot read stack ${stackName}: ${message} (deployed with \`npx cdk deploy --all\`? right --region / --profile?)`,
    );
  }
}

/**
 * The deployed backend as a CLI target: the region, and the table, secret names and API URL from
 * the two stacks' outputs (lib/outputs.ts names them). AWS credentials come from the SDK's default
 * chain; `--profile` selects a profile.
 */
export async function awsTarget(
  options: AwsTargetOptions,
  cfnClient?: CloudFormationClient,
): Promise<Target> {
  if (options.profile) process.env.AWS_PROFILE = options.profile;
  const cfn = cfnClient ?? new CloudFormationClient(options.region ? { region: options.region } : {});
  try {
    const names = stackNames(options.stackPrefix ?? DEFAULT_PREFIX);
    const [registry, provisioning] = await Promise.all([
      readStackOutputs(cfn, names.registry),
      readStackOutputs(cfn, names.provisioning),
    ]);
    const outputs = { registry, provisioning };
    const need = (name: OutputName) => {
      const stack = OUTPUT_STACK[name];
      const value = outputs[stack][OUTPUTS[name]];
      if (!value) throw new CliError(`stack ${names[stack]} has no output ${OUTPUTS[name]}; redeploy it`);
      return value;
    };
    return {
      kind: "aws",
      apiUrl: need("vendApiUrl"),
      region: await cfn.config.region(),
      tableName: need("tableName"),
      productSecretPrefix: need("productSecretPrefix"),
      registryKeyName: need("registryKeySecretName"),
      ...(provisioning[OUTPUTS.jitpRoleArn] ? { jitpRoleArn: provisioning[OUTPUTS.jitpRoleArn] } : {}),
    };
  } finally {
    if (!cfnClient) cfn.destroy();
  }
}
