import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { hashToken } from "#core/binding/model.ts";
import { silentLogger } from "#core/logger.ts";
import { disableDevice } from "#core/registry/manage-devices.ts";
import { makeBindingReportHandler, parseBindingTopic } from "#handlers/binding-report.ts";
import { matchPath } from "#local/api-gateway.ts";
import { RuleEngine } from "#local/mqtt/rule-engine.ts";
import { type LocalStack, startLocalStack } from "#local/stack.ts";
import { listTopicRules, loadTopicRule, RULE_TARGETS } from "#templates/catalog.ts";
import { recordingLogger } from "#test/local/mqtt/recording-logger.ts";
import { seedProduct } from "#test/support/local-stack.ts";

const token = () => randomBytes(16).toString("hex").toUpperCase();

/**
 * The binding-report handler on the real store (dynalite) and registry, called as the rule
 * delivers its events; the answers are what it hands the data plane's Publish. The refusals a
 * device can cause: unknown device, wrong product, disabled device, wrong method, malformed token.
 */
describe("binding-report handler", () => {
  let stack: LocalStack;
  const published: { topic: string; payload: unknown }[] = [];
  let handler: ReturnType<typeof makeBindingReportHandler>;

  before(async () => {
    stack = await startLocalStack({
      logger: silentLogger,
      ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0, coap: 0 },
    });
    await seedProduct(
      stack.services,
      { productKey: "a1Handler", name: "H", mqttAuth: { scheme: "aliyun" } },
      ["h-1", "h-2", "h-3"],
    );
    await seedProduct(stack.services, { productKey: "other-prod", name: "O" }, ["o-1"]);
    handler = makeBindingReportHandler({
      store: stack.binding.store,
      registry: stack.services.registry,
      logger: silentLogger,
      publisher: {
        publish: async (topic, payload) => {
          published.push({ topic, payload });
        },
      },
    });
  });
  after(() => stack?.close());

  const match = (topic: string, params: object, extra: object = {}) =>
    handler({ id: "5", version: "1.0", method: "thing.awss.enrollee.match", params, topic, ...extra });

  it("reads both topic forms, and nothing else", () => {
    assert.deepEqual(parseBindingTopic("/sys/a1Handler/h-1/thing/awss/enrollee/match"), {
      form: "sys",
      productKey: "a1Handler",
      deviceName: "h-1",
      kind: "match",
      replyTopic: "/sys/a1Handler/h-1/thing/awss/enrollee/match_reply",
    });
    assert.deepEqual(parseBindingTopic("things/SN-1/sys/thing/reset"), {
      form: "things",
      thingName: "SN-1",
      kind: "reset",
      replyTopic: "things/SN-1/sys/thing/reset_reply",
    });
    for (const topic of [
      "sys/a1Handler/h-1/thing/reset",
      "/sys/a1Handler/h-1/thing/reset/x",
      "things/a/b/sys/thing/reset",
    ]) {
      assert.equal(parseBindingTopic(topic), undefined, topic);
    }
  });

  it("answers 200, or 403 for an unknown device, a device of another product, a disabled device", async () => {
    published.length = 0;
    assert.deepEqual(await match("/sys/a1Handler/h-1/thing/awss/enrollee/match", { token: token() }), {
      id: "5",
      code: 200,
      data: {},
    });
    assert.equal(
      (await match("/sys/a1Handler/nobody/thing/awss/enrollee/match", { token: token() }))?.code,
      403,
    );
    assert.equal(
      (await match("/sys/a1Handler/o-1/thing/awss/enrollee/match", { token: token() }))?.code,
      403,
    );
    await disableDevice(stack.services, "h-2");
    assert.equal(
      (await match("/sys/a1Handler/h-2/thing/awss/enrollee/match", { token: token() }))?.code,
      403,
    );
    assert.deepEqual(
      published.map((p) => [p.topic, (p.payload as { code: number }).code]),
      [
        ["/sys/a1Handler/h-1/thing/awss/enrollee/match_reply", 200],
        ["/sys/a1Handler/nobody/thing/awss/enrollee/match_reply", 403],
        ["/sys/a1Handler/o-1/thing/awss/enrollee/match_reply", 403],
        ["/sys/a1Handler/h-2/thing/awss/enrollee/match_reply", 403],
      ],
    );
  });

  it("answers 400 for a wrong method or a malformed token, and nothing for an unexpected event", async () => {
    const topic = "/sys/a1Handler/h-1/thing/awss/enrollee/match";
    assert.equal((await match(topic, { token: token() }, { method: "thing.reset" }))?.code, 400);
    assert.equal((await match(topic, { token: token().toLowerCase() }))?.code, 400);
    assert.equal((await match(topic, {}))?.code, 400);
    assert.equal(await handler({ topic: "elsewhere/x" }), undefined);
    assert.equal(await handler("not an object"), undefined);
  });

  it("limits a device's token reports per window: the 31st is answered 429 and not stored, the next window accepts", async () => {
    let clock = Date.UTC(2030, 0, 1, 12, 0, 0); // a window boundary (10-minute windows)
    const logger = recordingLogger();
    const replies: unknown[] = [];
    const limited = makeBindingReportHandler({
      store: stack.binding.store,
      registry: stack.services.registry,
      logger,
      clock: () => clock,
      config: { maxTokenReports: 30, tokenReportWindowSeconds: 600 },
      publisher: { publish: async (_topic, payload) => void replies.push(payload) },
    });
    const topic = "/sys/a1Handler/h-3/thing/awss/enrollee/match";
    const report = (t: string) =>
      limited({ id: "7", method: "thing.awss.enrollee.match", params: { token: t }, topic });
    for (let i = 0; i < 30; i++) {
      clock += 1000;
      assert.equal((await report(token()))?.code, 200, `report ${i + 1}`);
    }
    clock += 1000;
    const over = token();
    const refused = await report(over);
    assert.equal(refused?.code, 429);
    assert.match(String(refused?.message), /Too many token reports from this device; retry in 569 s/);
    assert.deepEqual(replies.at(-1), refused, "the answer went out on match_reply");
    assert.equal(await stack.binding.store.getToken(hashToken(over)), undefined, "not stored");

    clock = Date.UTC(2030, 0, 1, 12, 10, 0);
    const next = token();
    assert.equal((await report(next))?.code, 200, "the next window accepts");
    assert.ok(await stack.binding.store.getToken(hashToken(next)));

    const warnings = logger.entries.filter((e) => e.level === "warn");
    assert.deepEqual(warnings, [
      {
        level: "warn",
        message: "binding: too many token reports",
        productKey: "a1Handler",
        deviceName: "h-3",
      },
    ]);
    const logged = JSON.stringify(logger.entries);
    assert.ok(!logged.includes(over) && !logged.includes(hashToken(over)), "no token in the logs");
  });

  it("the local rule engine delivers the binding rules' events with the whole topic, leading '/' included", async () => {
    const seen: unknown[] = [];
    const rules = listTopicRules()
      .map(loadTopicRule)
      .filter((r) => r.target === RULE_TARGETS.bindingReport);
    assert.deepEqual(rules.map((r) => r.ruleName).sort(), [
      "onramp_binding_match_sys",
      "onramp_binding_match_things",
      "onramp_binding_reset_sys",
      "onramp_binding_reset_things",
    ]);
    const engine = new RuleEngine({
      rules,
      targets: new Map([[RULE_TARGETS.bindingReport, async (payload: unknown) => seen.push(payload)]]),
      logger: recordingLogger(),
    });
    await engine.dispatch("/sys/pk1/dn1/thing/awss/enrollee/match", JSON.stringify({ id: "1", params: {} }));
    await engine.dispatch("things/SN-9/sys/thing/reset", JSON.stringify({ id: "2" }));
    await engine.dispatch("/sys/pk1/dn1/thing/other", JSON.stringify({ id: "3" }));
    assert.deepEqual(seen, [
      { id: "1", params: {}, topic: "/sys/pk1/dn1/thing/awss/enrollee/match" },
      { id: "2", topic: "things/SN-9/sys/thing/reset" },
    ]);
  });

  it("the local API gateway matches path parameters as API Gateway does (one whole segment each)", () => {
    const template = "/v1/bindings/{productKey}/{deviceName}";
    assert.deepEqual(matchPath(template, "/v1/bindings/a1Handler/h%3A1"), {
      productKey: "a1Handler",
      deviceName: "h:1",
    });
    assert.equal(matchPath(template, "/v1/bindings/a1Handler"), undefined);
    assert.equal(matchPath(template, "/v1/bindings/a1Handler/h-1/x"), undefined);
    assert.equal(matchPath(template, "/v1/bindings//h-1"), undefined);
    assert.deepEqual(matchPath("/v1/devices", "/v1/devices"), {});
  });
});
