/**
 * The emulator against AWS IoT's API reference: operations tools call (policies and their
 * versions, thing types, thing groups, topic rules), ARNs, pagination, error codes, reset.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, beforeEach, describe, it } from "node:test";
import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  CreateThingTypeCommand,
  CreateTopicRuleCommand,
  DeletePolicyCommand,
  DeletePolicyVersionCommand,
  DeleteThingCommand,
  DeleteThingGroupCommand,
  DeleteThingTypeCommand,
  DeleteTopicRuleCommand,
  DeprecateThingTypeCommand,
  DescribeEndpointCommand,
  DescribeThingCommand,
  DescribeThingGroupCommand,
  DescribeThingTypeCommand,
  DetachPolicyCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetTopicRuleCommand,
  ListPoliciesCommand,
  ListPolicyPrincipalsCommand,
  ListPolicyVersionsCommand,
  ListTargetsForPolicyCommand,
  ListThingGroupsCommand,
  ListThingGroupsForThingCommand,
  ListThingsCommand,
  ListThingsInThingGroupCommand,
  ListThingTypesCommand,
  ListTopicRulesCommand,
  RegisterCertificateCommand,
  RegisterCertificateWithoutCACommand,
  RegisterThingCommand,
  RemoveThingFromThingGroupCommand,
  ReplaceTopicRuleCommand,
  SetDefaultPolicyVersionCommand,
  UpdateThingCommand,
} from "@aws-sdk/client-iot";
import { silentLogger } from "#core/logger.ts";
import { IotState } from "#local/iot/index.ts";
import { RuleEngine } from "#local/mqtt/rule-engine.ts";
import { opensslCa, opensslCsr, opensslSign } from "#test/core/pki/openssl.ts";
import { type EmulatorFixture, iotClient, sdkError, startEmulator } from "./emulator-fixture.ts";

const policy = (action: string) =>
  JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: action, Resource: "*" }] });

const templateWith = (resources: Record<string, unknown>) =>
  JSON.stringify({ Parameters: { CSR: { Type: "String" } }, Resources: resources });

const csrCertificate = {
  Type: "AWS::IoT::Certificate",
  Properties: { CertificateSigningRequest: { Ref: "CSR" }, Status: "ACTIVE" },
};

async function reset(url: string): Promise<Response> {
  return fetch(`${url}/_emulator/reset`, { method: "POST" });
}

describe("IoT emulator: fidelity with AWS IoT", () => {
  let f: EmulatorFixture;
  before(async () => {
    f = await startEmulator({ accountId: "123456789012", policies: { seeded: policy("iot:Connect") } });
  });
  after(() => f.stop());
  beforeEach(async () => {
    assert.equal((await reset(f.url)).status, 200);
  });

  it("RegisterThing provisions a new certificate (CSR) with an existing named or inline policy", async () => {
    await f.client.send(new CreatePolicyCommand({ policyName: "existing", policyDocument: policy("iot:*") }));
    const named = await f.client.send(
      new RegisterThingCommand({
        templateBody: templateWith({
          certificate: csrCertificate,
          policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "existing" } },
        }),
        parameters: { CSR: opensslCsr("ec:P-256", "/CN=A").csrPem },
      }),
    );
    assert.ok(named.certificatePem);
    assert.match(named.resourceArns?.certificate ?? "", /:cert\/[0-9a-f]{64}$/);
    const targets = await f.client.send(new ListTargetsForPolicyCommand({ policyName: "existing" }));
    assert.deepEqual(targets.targets, [named.resourceArns?.certificate]);

    // An inline policy document that exists already (named after its SHA-256) is reused.
    const document = policy("iot:Publish");
    const inline = {
      certificate: csrCertificate,
      policy: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument: document } },
    };
    for (const cn of ["/CN=B", "/CN=C"]) {
      const out = await f.client.send(
        new RegisterThingCommand({
          templateBody: templateWith(inline),
          parameters: { CSR: opensslCsr("ec:P-256", cn).csrPem },
        }),
      );
      assert.ok(out.certificatePem);
    }
    const hash = createHash("sha256").update(document).digest("hex");
    const inlineTargets = await f.client.send(new ListTargetsForPolicyCommand({ policyName: hash }));
    assert.equal(inlineTargets.targets?.length, 2);
  });

  it("RegisterThing: a template's thing groups and thing type must exist; the thing joins the groups", async () => {
    const body = templateWith({
      thing: {
        Type: "AWS::IoT::Thing",
        Properties: { ThingName: "grouped-1", ThingTypeName: "sensor", ThingGroups: ["fleet-a"] },
      },
    });
    await sdkError(
      f.client.send(new RegisterThingCommand({ templateBody: body, parameters: { CSR: "x" } })),
      "ResourceRegistrationFailureException",
    );
    await f.client.send(new CreateThingTypeCommand({ thingTypeName: "sensor" }));
    await f.client.send(new CreateThingGroupCommand({ thingGroupName: "fleet-a" }));
    await f.client.send(new RegisterThingCommand({ templateBody: body, parameters: { CSR: "x" } }));
    const inGroup = await f.client.send(new ListThingsInThingGroupCommand({ thingGroupName: "fleet-a" }));
    assert.deepEqual(inGroup.things, ["grouped-1"]);
  });

  it("ListPolicies, ListPolicyPrincipals; AttachPolicy to a missing target is ResourceNotFoundException", async () => {
    const listed = await f.client.send(new ListPoliciesCommand({ ascendingOrder: true }));
    assert.deepEqual(
      listed.policies?.map((p) => p.policyName),
      ["seeded"],
      "reset keeps the policies configured at start",
    );
    assert.equal(listed.policies?.[0]?.policyArn, "arn:aws:iot:us-east-1:123456789012:policy/seeded");
    const missing = `arn:aws:iot:us-east-1:123456789012:cert/${"a".repeat(64)}`;
    const error = await sdkError(
      f.client.send(new AttachPolicyCommand({ policyName: "seeded", target: missing })),
      "ResourceNotFoundException",
    );
    assert.equal(error.$metadata?.httpStatusCode, 404);
    await sdkError(
      f.client.send(
        new AttachPolicyCommand({
          policyName: "seeded",
          target: "arn:aws:iot:us-east-1:123456789012:thinggroup/nope",
        }),
      ),
      "ResourceNotFoundException",
    );
    await sdkError(
      f.client.send(new AttachPolicyCommand({ policyName: "seeded", target: "whatever" })),
      "InvalidRequestException",
    );
    await f.client.send(new CreateThingGroupCommand({ thingGroupName: "g" }));
    const group = await f.client.send(new DescribeThingGroupCommand({ thingGroupName: "g" }));
    await f.client.send(new AttachPolicyCommand({ policyName: "seeded", target: group.thingGroupArn }));
    const principals = await f.client.send(new ListPolicyPrincipalsCommand({ policyName: "seeded" }));
    assert.deepEqual(principals.principals, [group.thingGroupArn]);
    await sdkError(
      f.client.send(new ListPolicyPrincipalsCommand({ policyName: "nope" })),
      "ResourceNotFoundException",
    );
    // DetachPolicy has no ResourceNotFoundException in the API reference: detaching nothing succeeds.
    await f.client.send(new DetachPolicyCommand({ policyName: "nope", target: group.thingGroupArn }));
  });

  it("policy versions: create (at most 5), list, get, set default, delete", async () => {
    await f.client.send(new CreatePolicyCommand({ policyName: "v", policyDocument: policy("iot:Connect") }));
    const v2 = await f.client.send(
      new CreatePolicyVersionCommand({ policyName: "v", policyDocument: policy("iot:Publish") }),
    );
    assert.equal(v2.policyVersionId, "2");
    assert.equal(v2.isDefaultVersion, false);
    const v3 = await f.client.send(
      new CreatePolicyVersionCommand({
        policyName: "v",
        policyDocument: policy("iot:Subscribe"),
        setAsDefault: true,
      }),
    );
    assert.equal(v3.isDefaultVersion, true);
    const current = await f.client.send(new GetPolicyCommand({ policyName: "v" }));
    assert.equal(current.defaultVersionId, "3");
    assert.equal(current.policyDocument, policy("iot:Subscribe"));
    for (const action of ["iot:Receive", "iot:*"]) {
      await f.client.send(
        new CreatePolicyVersionCommand({ policyName: "v", policyDocument: policy(action) }),
      );
    }
    await sdkError(
      f.client.send(new CreatePolicyVersionCommand({ policyName: "v", policyDocument: policy("iot:X") })),
      "VersionsLimitExceededException",
    );
    const versions = await f.client.send(new ListPolicyVersionsCommand({ policyName: "v" }));
    assert.equal(versions.policyVersions?.length, 5);
    assert.deepEqual(
      versions.policyVersions?.filter((v) => v.isDefaultVersion).map((v) => v.versionId),
      ["3"],
    );
    const one = await f.client.send(new GetPolicyVersionCommand({ policyName: "v", policyVersionId: "2" }));
    assert.equal(one.policyDocument, policy("iot:Publish"));
    await f.client.send(new SetDefaultPolicyVersionCommand({ policyName: "v", policyVersionId: "2" }));
    assert.equal((await f.client.send(new GetPolicyCommand({ policyName: "v" }))).defaultVersionId, "2");
    await sdkError(
      f.client.send(new DeletePolicyVersionCommand({ policyName: "v", policyVersionId: "2" })),
      "DeleteConflictException",
    );
    await sdkError(f.client.send(new DeletePolicyCommand({ policyName: "v" })), "DeleteConflictException");
    for (const id of ["1", "3", "4", "5"]) {
      await f.client.send(new DeletePolicyVersionCommand({ policyName: "v", policyVersionId: id }));
    }
    await sdkError(
      f.client.send(new GetPolicyVersionCommand({ policyName: "v", policyVersionId: "1" })),
      "ResourceNotFoundException",
    );
    const next = await f.client.send(
      new CreatePolicyVersionCommand({ policyName: "v", policyDocument: policy("iot:Connect") }),
    );
    assert.equal(next.policyVersionId, "6", "version ids are not reused (1 to 5 were deleted)");
    await f.client.send(new DeletePolicyVersionCommand({ policyName: "v", policyVersionId: "6" }));
    await f.client.send(new DeletePolicyCommand({ policyName: "v" }));
  });

  it("thing types: create, describe, list, deprecate; CreateThing and UpdateThing check the type", async () => {
    await sdkError(
      f.client.send(new CreateThingCommand({ thingName: "t1", thingTypeName: "lamp" })),
      "ResourceNotFoundException",
    );
    const created = await f.client.send(
      new CreateThingTypeCommand({
        thingTypeName: "lamp",
        thingTypeProperties: { thingTypeDescription: "a lamp", searchableAttributes: ["color"] },
      }),
    );
    assert.equal(created.thingTypeArn, "arn:aws:iot:us-east-1:123456789012:thingtype/lamp");
    await sdkError(
      f.client.send(new CreateThingTypeCommand({ thingTypeName: "lamp" })),
      "ResourceAlreadyExistsException",
    );
    await f.client.send(new CreateThingCommand({ thingName: "t1", thingTypeName: "lamp" }));
    const described = await f.client.send(new DescribeThingTypeCommand({ thingTypeName: "lamp" }));
    assert.equal(described.thingTypeProperties?.thingTypeDescription, "a lamp");
    assert.equal(described.thingTypeMetadata?.deprecated, false);
    const listed = await f.client.send(new ListThingTypesCommand({}));
    assert.deepEqual(
      listed.thingTypes?.map((t) => t.thingTypeName),
      ["lamp"],
    );
    await sdkError(
      f.client.send(new DeleteThingTypeCommand({ thingTypeName: "lamp" })),
      "InvalidRequestException",
    );
    await f.client.send(new DeprecateThingTypeCommand({ thingTypeName: "lamp" }));
    assert.equal(
      (await f.client.send(new DescribeThingTypeCommand({ thingTypeName: "lamp" }))).thingTypeMetadata
        ?.deprecated,
      true,
    );
    await sdkError(
      f.client.send(new CreateThingCommand({ thingName: "t2", thingTypeName: "lamp" })),
      "InvalidRequestException",
    );
    await f.client.send(new CreateThingCommand({ thingName: "t2" }));
    await sdkError(
      f.client.send(new UpdateThingCommand({ thingName: "t2", thingTypeName: "lamp" })),
      "InvalidRequestException",
    );
    await sdkError(
      f.client.send(new UpdateThingCommand({ thingName: "t2", thingTypeName: "nope" })),
      "ResourceNotFoundException",
    );
    await sdkError(
      f.client.send(new DeleteThingTypeCommand({ thingTypeName: "lamp" })),
      "InvalidRequestException",
    );
    await f.client.send(new UpdateThingCommand({ thingName: "t1", removeThingType: true }));
    await f.client.send(new DeleteThingTypeCommand({ thingTypeName: "lamp" }));
    await sdkError(
      f.client.send(new DescribeThingTypeCommand({ thingTypeName: "lamp" })),
      "ResourceNotFoundException",
    );
  });

  it("thing groups: hierarchy, membership (one group per hierarchy), listings, delete", async () => {
    await f.client.send(new CreateThingGroupCommand({ thingGroupName: "site" }));
    await f.client.send(
      new CreateThingGroupCommand({
        thingGroupName: "floor-1",
        parentGroupName: "site",
        thingGroupProperties: {
          thingGroupDescription: "first",
          attributePayload: { attributes: { n: "1" } },
        },
      }),
    );
    await f.client.send(new CreateThingGroupCommand({ thingGroupName: "floor-2", parentGroupName: "site" }));
    await f.client.send(new CreateThingGroupCommand({ thingGroupName: "other" }));
    await sdkError(
      f.client.send(new CreateThingGroupCommand({ thingGroupName: "x", parentGroupName: "nope" })),
      "InvalidRequestException",
    );
    const floor = await f.client.send(new DescribeThingGroupCommand({ thingGroupName: "floor-1" }));
    assert.equal(floor.thingGroupMetadata?.parentGroupName, "site");
    assert.deepEqual(
      floor.thingGroupMetadata?.rootToParentThingGroups?.map((g) => g.groupName),
      ["site"],
    );
    assert.equal(floor.thingGroupProperties?.attributePayload?.attributes?.n, "1");

    await f.client.send(new CreateThingCommand({ thingName: "lamp-1" }));
    await f.client.send(new CreateThingCommand({ thingName: "lamp-2" }));
    await f.client.send(new AddThingToThingGroupCommand({ thingGroupName: "floor-1", thingName: "lamp-1" }));
    await f.client.send(
      new AddThingToThingGroupCommand({ thingGroupArn: floor.thingGroupArn, thingName: "lamp-2" }),
    );
    await f.client.send(new AddThingToThingGroupCommand({ thingGroupName: "other", thingName: "lamp-1" }));
    await sdkError(
      f.client.send(new AddThingToThingGroupCommand({ thingGroupName: "floor-2", thingName: "lamp-1" })),
      "InvalidRequestException",
    );
    await sdkError(
      f.client.send(new AddThingToThingGroupCommand({ thingGroupName: "floor-2", thingName: "nope" })),
      "ResourceNotFoundException",
    );
    const version = (await f.client.send(new DescribeThingCommand({ thingName: "lamp-1" }))).version;
    assert.equal(version, 1, "membership does not change the thing's version");

    const direct = await f.client.send(new ListThingsInThingGroupCommand({ thingGroupName: "site" }));
    assert.deepEqual(direct.things, []);
    const all = await f.client.send(
      new ListThingsInThingGroupCommand({ thingGroupName: "site", recursive: true }),
    );
    assert.deepEqual(all.things, ["lamp-1", "lamp-2"]);
    const groups = await f.client.send(new ListThingGroupsForThingCommand({ thingName: "lamp-1" }));
    assert.deepEqual(
      groups.thingGroups?.map((g) => g.groupName),
      ["floor-1", "other"],
    );
    const children = await f.client.send(new ListThingGroupsCommand({ parentGroup: "site" }));
    assert.deepEqual(
      children.thingGroups?.map((g) => g.groupName),
      ["floor-1", "floor-2"],
    );
    const roots = await f.client.send(new ListThingGroupsCommand({ recursive: false }));
    assert.deepEqual(
      roots.thingGroups?.map((g) => g.groupName),
      ["other", "site"],
    );
    const prefixed = await f.client.send(new ListThingGroupsCommand({ namePrefixFilter: "floor" }));
    assert.equal(prefixed.thingGroups?.length, 2);

    await f.client.send(
      new RemoveThingFromThingGroupCommand({ thingGroupName: "floor-1", thingName: "lamp-2" }),
    );
    assert.deepEqual(
      (await f.client.send(new ListThingsInThingGroupCommand({ thingGroupName: "floor-1" }))).things,
      ["lamp-1"],
    );
    await sdkError(
      f.client.send(new DeleteThingGroupCommand({ thingGroupName: "site" })),
      "InvalidRequestException",
    );
    await f.client.send(new DeleteThingGroupCommand({ thingGroupName: "floor-1" }));
    await f.client.send(new DeleteThingGroupCommand({ thingGroupName: "floor-1" })); // gone already: fine
    assert.deepEqual(
      (await f.client.send(new ListThingGroupsForThingCommand({ thingName: "lamp-1" }))).thingGroups?.map(
        (g) => g.groupName,
      ),
      ["other"],
    );
  });

  it("topic rules: create, get, list, replace, delete; unknown rules are UnauthorizedException (401)", async () => {
    const payload = {
      sql: "SELECT * FROM 'sensors/+/data'",
      actions: [{ lambda: { functionArn: "arn:aws:lambda:us-east-1:123456789012:function:sink" } }],
      ruleDisabled: false,
      awsIotSqlVersion: "2016-03-23",
    };
    await f.client.send(new CreateTopicRuleCommand({ ruleName: "to_sink", topicRulePayload: payload }));
    await sdkError(
      f.client.send(new CreateTopicRuleCommand({ ruleName: "to_sink", topicRulePayload: payload })),
      "ResourceAlreadyExistsException",
    );
    await sdkError(
      f.client.send(
        new CreateTopicRuleCommand({
          ruleName: "bad",
          topicRulePayload: { ...payload, sql: "SELEKT nothing" },
        }),
      ),
      "SqlParseException",
    );
    const got = await f.client.send(new GetTopicRuleCommand({ ruleName: "to_sink" }));
    assert.equal(got.ruleArn, "arn:aws:iot:us-east-1:123456789012:rule/to_sink");
    assert.equal(got.rule?.sql, payload.sql);
    assert.equal(got.rule?.actions?.[0]?.lambda?.functionArn, payload.actions[0]?.lambda.functionArn);
    const listed = await f.client.send(new ListTopicRulesCommand({ topic: "sensors/+/data" }));
    assert.deepEqual(
      listed.rules?.map((r) => [r.ruleName, r.topicPattern]),
      [["to_sink", "sensors/+/data"]],
    );
    await f.client.send(
      new ReplaceTopicRuleCommand({
        ruleName: "to_sink",
        topicRulePayload: { ...payload, ruleDisabled: true },
      }),
    );
    assert.equal(
      (await f.client.send(new GetTopicRuleCommand({ ruleName: "to_sink" }))).rule?.ruleDisabled,
      true,
    );
    await f.client.send(new DeleteTopicRuleCommand({ ruleName: "to_sink" }));
    const error = await sdkError(
      f.client.send(new GetTopicRuleCommand({ ruleName: "to_sink" })),
      "UnauthorizedException",
    );
    assert.equal(error.$metadata?.httpStatusCode, 401);
  });

  it("ARNs name the region the client signed for and the configured account", async () => {
    const eu = iotClient(f.url, 1, "eu-west-1");
    try {
      const thing = await eu.send(new CreateThingCommand({ thingName: "eu-thing" }));
      assert.equal(thing.thingArn, "arn:aws:iot:eu-west-1:123456789012:thing/eu-thing");
    } finally {
      eu.destroy();
    }
  });

  it("pagination tokens resume after the last item: deleting while paging skips nothing", async () => {
    for (const n of [1, 2, 3, 4, 5, 6]) await f.client.send(new CreateThingCommand({ thingName: `p-${n}` }));
    const first = await f.client.send(new ListThingsCommand({ maxResults: 2 }));
    assert.deepEqual(
      first.things?.map((t) => t.thingName),
      ["p-1", "p-2"],
    );
    assert.match(first.nextToken ?? "", /^[A-Za-z0-9+/]+={0,2}$/);
    // Deleting what was already listed must not shift the next page (an offset token would skip p-3).
    await f.client.send(new DeleteThingCommand({ thingName: "p-1" }));
    await f.client.send(new DeleteThingCommand({ thingName: "p-2" }));
    const second = await f.client.send(new ListThingsCommand({ maxResults: 2, nextToken: first.nextToken }));
    assert.deepEqual(
      second.things?.map((t) => t.thingName),
      ["p-3", "p-4"],
    );
    await sdkError(
      f.client.send(new ListThingsCommand({ nextToken: "bm90LWEtdG9rZW4=" })),
      "InvalidRequestException",
    );
  });

  it("RegisterCertificate of a registered certificate: ResourceAlreadyExistsException before any CA check", async () => {
    const ca = opensslCa("/CN=Unregistered CA");
    const certificatePem = opensslSign(opensslCsr("ec:P-256", "/CN=dev").csrPem, ca);
    await f.client.send(new RegisterCertificateWithoutCACommand({ certificatePem }));
    // The CA is not registered: a fresh certificate would get CertificateValidationException.
    const error = await sdkError(
      f.client.send(new RegisterCertificateCommand({ certificatePem, caCertificatePem: ca.certPem })),
      "ResourceAlreadyExistsException",
    );
    assert.equal(error.$metadata?.httpStatusCode, 409);
  });

  it("DescribeEndpoint answers a host name on 8883, host:port elsewhere", async () => {
    f.emulator.setDataEndpoint("localhost:8883");
    const ats = await f.client.send(new DescribeEndpointCommand({ endpointType: "iot:Data-ATS" }));
    assert.equal(ats.endpointAddress, "localhost");
    f.emulator.setDataEndpoint("localhost:18883");
    const other = await f.client.send(new DescribeEndpointCommand({ endpointType: "iot:Data-ATS" }));
    assert.equal(other.endpointAddress, "localhost:18883");
  });

  it("POST /_emulator/reset empties the registry (only POST)", async () => {
    await f.client.send(new CreateThingCommand({ thingName: "before-reset" }));
    assert.equal((await fetch(`${f.url}/_emulator/reset`)).status, 400);
    assert.equal((await reset(f.url)).status, 200);
    assert.deepEqual((await f.client.send(new ListThingsCommand({}))).things, []);
  });
});

describe("local rule engine: rules created through the API", () => {
  it("runs enabled rules whose lambda action names a target, and follows replace/delete", async () => {
    const state = new IotState({ region: "us-east-1", accountId: "1" }, IotState.emptySnapshot("code"));
    const received: unknown[] = [];
    const engine = new RuleEngine({
      rules: [],
      targets: new Map([["sink", async (payload: unknown) => received.push(payload)]]),
      logger: silentLogger,
      retryDelaysMs: [],
    });
    state.watchTopicRules((rules) => engine.setApiRules(rules));
    const rule = {
      ruleName: "api_rule",
      ruleArn: "arn:aws:iot:us-east-1:1:rule/api_rule",
      sql: "SELECT * FROM 'a/+'",
      actions: [
        { lambda: { functionArn: "arn:aws:lambda:us-east-1:1:function:sink" } },
        { sqs: { queueUrl: "q" } },
      ],
      ruleDisabled: false,
      createdAt: 0,
    };
    state.putTopicRule(rule, "create");
    await engine.dispatch("a/1", '{"n":1}');
    assert.deepEqual(received, [{ n: 1 }]);
    state.putTopicRule({ ...rule, ruleDisabled: true }, "replace");
    await engine.dispatch("a/1", '{"n":2}');
    state.putTopicRule({ ...rule, ruleDisabled: false }, "replace");
    state.deleteTopicRule("api_rule");
    await engine.dispatch("a/1", '{"n":3}');
    assert.deepEqual(received, [{ n: 1 }]);
  });
});
