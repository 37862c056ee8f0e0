import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { createIotEmulator, type IotEmulator } from "#local/iot/index.ts";

/**
 * Interoperability: the `aws` CLI (botocore, a client written outside this project) calls the
 * emulator's newer operations — policies and versions, thing groups, thing types, topic rules,
 * DescribeEndpoint — and reads the answers. The emulator runs in this process without the local
 * stack's signature check, so any credentials do. Needs the aws CLI (v1 or v2).
 */
const skip = spawnSync("aws", ["--version"]).error !== undefined ? "needs the aws CLI" : false;
const run = promisify(execFile);

describe("aws CLI against the IoT emulator", { skip }, () => {
  let emulator: IotEmulator;
  let url: string;
  let home: string;
  before(async () => {
    emulator = await createIotEmulator({ accountId: "111122223333" });
    url = (await emulator.listen(0)).url;
    home = mkdtempSync(join(tmpdir(), "onramp-cli-home-"));
  });
  after(async () => {
    await emulator.close();
    rmSync(home, { recursive: true, force: true });
  });

  const aws = async (...args: string[]): Promise<Record<string, unknown>> => {
    const { stdout } = await run("aws", ["iot", ...args, "--endpoint-url", url, "--output", "json"], {
      env: {
        PATH: process.env.PATH,
        HOME: home,
        AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY: "secret",
        AWS_REGION: "eu-central-1",
        AWS_DEFAULT_REGION: "eu-central-1",
        AWS_PAGER: "",
      },
    });
    return stdout.trim() === "" ? {} : (JSON.parse(stdout) as Record<string, unknown>);
  };

  it("policies, versions, thing groups and types, topic rules, the endpoint", async () => {
    const document = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: "iot:Connect", Resource: "*" }],
    });
    const created = await aws("create-policy", "--policy-name", "cli-policy", "--policy-document", document);
    assert.equal(created.policyArn, "arn:aws:iot:eu-central-1:111122223333:policy/cli-policy");
    await aws(
      "create-policy-version",
      "--policy-name",
      "cli-policy",
      "--policy-document",
      document,
      "--set-as-default",
    );
    const policies = (await aws("list-policies")).policies as Array<{ policyName: string }>;
    assert.deepEqual(
      policies.map((p) => p.policyName),
      ["cli-policy"],
    );
    const versions = (await aws("list-policy-versions", "--policy-name", "cli-policy"))
      .policyVersions as unknown[];
    assert.equal(versions.length, 2);

    await aws("create-thing-group", "--thing-group-name", "cli-group");
    await aws("create-thing-type", "--thing-type-name", "cli-type");
    await aws("create-thing", "--thing-name", "cli-thing", "--thing-type-name", "cli-type");
    await aws("add-thing-to-thing-group", "--thing-group-name", "cli-group", "--thing-name", "cli-thing");
    const groups = (await aws("list-thing-groups")).thingGroups as Array<{ groupName: string }>;
    assert.deepEqual(
      groups.map((g) => g.groupName),
      ["cli-group"],
    );
    const things = (await aws("list-things-in-thing-group", "--thing-group-name", "cli-group")).things;
    assert.deepEqual(things, ["cli-thing"]);

    const rule = JSON.stringify({ sql: "SELECT * FROM 'cli/+'", actions: [], ruleDisabled: false });
    await aws("create-topic-rule", "--rule-name", "cli_rule", "--topic-rule-payload", rule);
    const rules = (await aws("list-topic-rules")).rules as Array<{ ruleName: string; topicPattern: string }>;
    assert.deepEqual(
      rules.map((r) => [r.ruleName, r.topicPattern]),
      [["cli_rule", "cli/+"]],
    );

    const endpoint = await aws("describe-endpoint", "--endpoint-type", "iot:Data-ATS");
    assert.equal(endpoint.endpointAddress, "localhost");
  });
});
