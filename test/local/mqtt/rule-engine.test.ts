import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRuleSql, RuleDefinitionError, RuleEngine, type RuleTarget } from "#local/mqtt/rule-engine.ts";
import { isValidTopicFilter, isValidTopicName, topicMatchesFilter } from "#local/mqtt/topic-filter.ts";
import { listTopicRules, loadTopicRule, RULE_TARGETS, type TopicRuleDefinition } from "#templates/catalog.ts";
import { logsCarryKeyMaterial, recordingLogger } from "./recording-logger.ts";

const rule = (ruleName: string, sql: string, target = "sink"): TopicRuleDefinition => ({
  ruleName,
  sql,
  awsIotSqlVersion: "2016-03-23",
  target,
  description: "test rule",
});

describe("topic filters", () => {
  it("matches + (one level) and # (the rest, including the parent)", () => {
    const cases: Array<[string, string, boolean]> = [
      ["a/b", "a/b", true],
      ["a/+", "a/b", true],
      ["a/+", "a/b/c", false],
      ["a/+", "a", false],
      ["a/+/c", "a/b/c", true],
      ["a/#", "a/b/c", true],
      ["a/#", "a", true],
      ["#", "a/b", true],
      ["+/+", "a/b", true],
      ["+", "a/b", false],
      ["a/b", "a/b/c", false],
      ["a/+", "a/", true],
      ["$aws/events/certificates/registered/+", "$aws/events/certificates/registered/abc", true],
      ["$aws/events/certificates/registered/+", "$aws/events/certificates/registered/abc/x", false],
      ["#", "$aws/events/x", false],
      ["+/events/x", "$aws/events/x", false],
    ];
    for (const [filter, topic, expected] of cases) {
      assert.equal(topicMatchesFilter(filter, topic), expected, `${filter} vs ${topic}`);
    }
  });

  it("validates filters and topic names", () => {
    for (const good of ["a", "a/+/c", "a/#", "#", "+", "$aws/things/+/shadow/#"]) {
      assert.equal(isValidTopicFilter(good), true, good);
    }
    for (const bad of ["", "a/#/b", "a#", "a/b+", "a/+b/c", "##"]) {
      assert.equal(isValidTopicFilter(bad), false, bad);
    }
    assert.equal(isValidTopicName("things/a/b"), true);
    assert.equal(isValidTopicName("things/+/b"), false);
    assert.equal(isValidTopicName(""), false);
  });
});

describe("rule SQL", () => {
  it("reads SELECT * FROM '<filter>' only", () => {
    assert.equal(
      parseRuleSql("SELECT * FROM '$aws/events/certificates/registered/+'"),
      "$aws/events/certificates/registered/+",
    );
    assert.equal(parseRuleSql("  select  *  from 'a/#' "), "a/#");
    for (const sql of [
      "SELECT state FROM 'a/b'",
      "SELECT * FROM 'a/b' WHERE x = 1",
      "SELECT * FROM a/b",
      "DELETE FROM 'a'",
      "",
    ]) {
      assert.throws(() => parseRuleSql(sql), RuleDefinitionError, sql);
    }
    assert.throws(() => parseRuleSql("SELECT * FROM 'a/#/b'"), /not a valid MQTT topic filter/);
  });

  it("adds topic(n), principal() and clientid() to the message as AWS IoT SQL does", async () => {
    const got: unknown[] = [];
    const engine = new RuleEngine({
      rules: [
        {
          ruleName: "with_functions",
          sql: "SELECT *, topic(2) AS thingName, principal() AS principal, clientid() AS who FROM 'things/+/x'",
          awsIotSqlVersion: "2016-03-23",
          target: "sink",
          description: "test",
        },
      ],
      targets: new Map<string, RuleTarget>([["sink", async (message) => got.push(message)]]),
      logger: recordingLogger(),
    });
    await engine.dispatch("things/dev-1/x", JSON.stringify({ a: 1 }), {
      clientId: "dev-1",
      principal: "c".repeat(64),
    });
    await engine.dispatch("things/dev-2/x", JSON.stringify({ a: 2 }));
    assert.deepEqual(got, [
      { a: 1, thingName: "dev-1", principal: "c".repeat(64), who: "dev-1" },
      { a: 2, thingName: "dev-2" },
    ]);
  });

  it("refuses, at load, rules it cannot run, naming the rule", () => {
    const targets = new Map<string, RuleTarget>([["sink", async () => undefined]]);
    const logger = recordingLogger();
    const load = (...rules: TopicRuleDefinition[]) => new RuleEngine({ rules, targets, logger });
    assert.throws(
      () => load(rule("bad_sql", "SELECT a FROM 'x'")),
      /Rule bad_sql: .*SELECT \*\[, topic\(n\)/,
    );
    assert.throws(
      () => load(rule("bad_fn", "SELECT *, timestamp() AS t FROM 'x'")),
      /Rule bad_fn: .*does not run the SQL function timestamp\(\)/,
    );
    assert.throws(
      () => load(rule("no_target", "SELECT * FROM 'x'", "lambda-x")),
      /no_target targets "lambda-x"/,
    );
    assert.throws(
      () => load(rule("twice", "SELECT * FROM 'x'"), rule("twice", "SELECT * FROM 'y'")),
      /twice/,
    );
    assert.equal(load(rule("ok", "SELECT * FROM 'x/+'")).rules[0]?.topicFilter, "x/+");
  });

  it("loads the shipped rules: JITR events to the jitr-registration handler", () => {
    assert.ok(listTopicRules().includes("jitr-registration"));
    const definition = loadTopicRule("jitr-registration");
    assert.equal(definition.ruleName, "onramp_jitr_registration");
    assert.equal(definition.target, RULE_TARGETS.jitrRegistration);
    assert.equal(definition.awsIotSqlVersion, "2016-03-23");
    const engine = new RuleEngine({
      rules: listTopicRules().map(loadTopicRule),
      // Every shipped target: the engine refuses a rule whose target is not wired.
      targets: new Map(Object.values(RULE_TARGETS).map((target) => [target, async () => undefined])),
      logger: recordingLogger(),
    });
    assert.deepEqual(
      engine.matchingRules(`$aws/events/certificates/registered/${"a".repeat(64)}`).map((r) => r.ruleName),
      ["onramp_jitr_registration"],
    );
    assert.deepEqual(engine.matchingRules("$aws/events/certificates/other/x"), []);
  });
});

describe("rule engine deliveries", () => {
  const setup = (sink: RuleTarget, other: RuleTarget = async () => "other", maxDeadLetters?: number) => {
    const logger = recordingLogger();
    const engine = new RuleEngine({
      rules: [rule("events", "SELECT * FROM 'events/+'"), rule("all", "SELECT * FROM 'events/#'", "other")],
      targets: new Map([
        ["sink", sink],
        ["other", other],
      ]),
      logger,
      ...(maxDeadLetters ? { maxDeadLetters } : {}),
      retryDelaysMs: [5, 5],
      clock: () => 1_700_000_000_000,
    });
    return { engine, logger };
  };

  it("retries a failed delivery twice, as Lambda retries an async invocation, before a dead letter", async () => {
    let calls = 0;
    const flaky = setup(async () => {
      calls++;
      if (calls === 1) throw new Error("transient");
      return "ok";
    });
    const [first] = await flaky.engine.dispatch("events/x", "{}");
    assert.equal(first?.outcome, "delivered");
    assert.equal(calls, 2);
    assert.deepEqual(flaky.engine.deadLetters, []);

    let attempts = 0;
    const broken = setup(async () => {
      attempts++;
      throw new Error("down");
    });
    const [failed] = await broken.engine.dispatch("events/x", "{}");
    assert.equal(failed?.outcome, "failed");
    assert.equal(attempts, 3);
    assert.equal(broken.engine.deadLetters.length, 1);
  });

  it("hands parsed JSON and the topic to every matching rule's target", async () => {
    const received: Array<[unknown, string]> = [];
    const { engine } = setup(async (payload, topic) => {
      received.push([payload, topic]);
      return { ok: true };
    });
    const deliveries = await engine.dispatch("events/one", Buffer.from('{"n":1}'));
    assert.deepEqual(received, [[{ n: 1 }, "events/one"]]);
    assert.deepEqual(
      deliveries.map((d) => [d.ruleName, d.outcome, d.result]),
      [
        ["events", "delivered", { ok: true }],
        ["all", "delivered", "other"],
      ],
    );
    assert.deepEqual(await engine.dispatch("events/one/deeper", "{}").then((d) => d.map((x) => x.ruleName)), [
      "all",
    ]);
    assert.deepEqual(await engine.dispatch("elsewhere", "{}"), []);
    assert.equal(received.length, 1);
  });

  it("skips payloads that are not JSON", async () => {
    let calls = 0;
    const { engine, logger } = setup(async () => {
      calls++;
    });
    const deliveries = await engine.dispatch("events/raw", Buffer.from([0xff, 0x00]));
    assert.deepEqual(
      deliveries.map((d) => d.outcome),
      ["skipped", "skipped"],
    );
    assert.equal(calls, 0);
    assert.ok(logger.entries.some((e) => e.level === "warn" && e.ruleName === "events"));
    assert.deepEqual(engine.deadLetters, []);
  });

  it("logs a failed delivery without the payload and keeps it as a dead letter", async () => {
    const { engine, logger } = setup(async () => {
      throw new TypeError("boom");
    });
    const payload = { certificateId: "c".repeat(64), note: "-----BEGIN CERTIFICATE-----" };
    void engine.dispatch("events/x", JSON.stringify(payload));
    await engine.settled();
    assert.deepEqual(engine.deadLetters, [
      {
        ruleName: "events",
        target: "sink",
        topic: "events/x",
        payload,
        error: "TypeError: boom",
        failedAt: 1_700_000_000_000,
      },
    ]);
    const failure = logger.entries.find((e) => e.level === "error");
    assert.deepEqual(failure, {
      level: "error",
      message: "rule engine: delivery failed, kept as a dead letter",
      ruleName: "events",
      target: "sink",
      topic: "events/x",
      error: "TypeError",
    });
    assert.equal(logsCarryKeyMaterial(logger.entries), false);
    assert.equal(engine.recentDeliveries.find((d) => d.ruleName === "all")?.outcome, "delivered");
  });

  it("settled() waits for slow targets; dead letters are capped, oldest dropped", async () => {
    let finished = 0;
    const { engine } = setup(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        finished++;
      },
      async () => {
        throw new Error("always");
      },
      3,
    );
    for (let i = 0; i < 5; i++) void engine.dispatch(`events/${i}`, JSON.stringify({ i }));
    await engine.settled();
    assert.equal(finished, 5);
    assert.deepEqual(
      engine.deadLetters.map((d) => (d.payload as { i: number }).i),
      [2, 3, 4],
    );
  });
});
