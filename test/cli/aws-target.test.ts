import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { CloudFormationClient } from "@aws-sdk/client-cloudformation";
import { awsTarget } from "#cli/aws-target.ts";
import { CliError } from "#cli/cli-error.ts";
import { OUTPUTS, STACK_NAMES } from "#lib/outputs.ts";

/**
 * No local component plays CloudFormation, so this test serves DescribeStacks (AWS query protocol,
 * XML) from a small HTTP endpoint; the real SDK client serializes and parses as it does on AWS.
 */
const stacks: Record<string, Record<string, string>> = {
  [STACK_NAMES.registry]: {
    [OUTPUTS.tableName]: "onramp-registry-abc",
    [OUTPUTS.productSecretPrefix]: "onramp/products/",
    [OUTPUTS.registryKeySecretName]: "onramp/registry-key",
  },
  [STACK_NAMES.provisioning]: {
    [OUTPUTS.vendApiUrl]: "https://abc.execute-api.eu-west-1.amazonaws.com/prod/",
    [OUTPUTS.jitpRoleArn]: "arn:aws:iam::123456789012:role/IotOnramp-Jitp",
  },
};

function describeStacksXml(name: string, outputs: Record<string, string>): string {
  const members = Object.entries(outputs)
    .map(([k, v]) => `<member><OutputKey>${k}</OutputKey><OutputValue>${v}</OutputValue></member>`)
    .join("");
  return `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member><StackName>${name}</StackName><StackStatus>CREATE_COMPLETE</StackStatus><CreationTime>2026-11-01T00:00:00Z</CreationTime><Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeStacksResponse>`;
}

describe("onramp --aws: the deployed stacks as a target", () => {
  let server: Server;
  let endpoint: string;
  const requested: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString();
      });
      req.on("end", () => {
        const name = new URLSearchParams(body).get("StackName") ?? "";
        requested.push(name);
        const outputs = stacks[name];
        if (!outputs) {
          res
            .writeHead(400, { "content-type": "text/xml" })
            .end(
              `<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${name} does not exist</Message></Error><RequestId>1</RequestId></ErrorResponse>`,
            );
          return;
        }
        res.writeHead(200, { "content-type": "text/xml" }).end(describeStacksXml(name, outputs));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const client = () =>
    new CloudFormationClient({
      endpoint,
      region: "eu-west-1",
      credentials: { accessKeyId: "a", secretAccessKey: "b" },
    });

  it("reads the table, secret names and API URL from the two stacks' outputs", async () => {
    const target = await awsTarget({}, client());
    assert.deepEqual(target, {
      kind: "aws",
      apiUrl: "https://abc.execute-api.eu-west-1.amazonaws.com/prod/",
      region: "eu-west-1",
      tableName: "onramp-registry-abc",
      productSecretPrefix: "onramp/products/",
      registryKeyName: "onramp/registry-key",
      jitpRoleArn: "arn:aws:iam::123456789012:role/IotOnramp-Jitp",
    });
    assert.deepEqual(requested.sort(), [STACK_NAMES.provisioning, STACK_NAMES.registry].sort());
  });

  it("names the stack when it is not deployed (another prefix)", async () => {
    await assert.rejects(awsTarget({ stackPrefix: "Nope" }, client()), (e: unknown) => {
      assert.ok(e instanceof CliError);
      assert.match(e.message, /cannot read stack Nope-(Registry|Provisioning)/);
      return true;
    });
  });
});
