import * as z from "zod";
import { topicRuleArn } from "./arns.ts";
import { alreadyExists, IotServiceError } from "./errors.ts";
import type { TopicRuleRecord } from "./iot-state.ts";
import { type EmulatorContext, epochSeconds, type OperationRequest, type Route } from "./operation.ts";
import { paginate, parseInput, queryBoolean, queryInteger } from "./validation.ts";

/** Rule names: `^[a-zA-Z0-9_]+$`, 1-128 characters (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateTopicRule.html). */
const ruleNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-zA-Z0-9_]+$/, "letters, digits or '_'");

const actionSchema = z.record(z.string(), z.unknown());

/** TopicRulePayload: `sql` and `actions` are required. */
const payloadSchema = z.object({
  sql: z.string().min(1),
  description: z.string().optional(),
  actions: z.array(actionSchema).max(10),
  ruleDisabled: z.boolean().optional(),
  awsIotSqlVersion: z.string().optional(),
  errorAction: actionSchema.optional(),
});

/** `SELECT <fields> FROM '<topic filter>' [WHERE ...]`: what the emulator accepts as rule SQL. */
const SQL = /^\s*SELECT\s+[\s\S]+?\s+FROM\s+'([^']*)'(\s+WHERE\s+[\s\S]+)?\s*;?\s*$/i;

/**
 * The topic filter of a rule's SQL; SqlParseException for a statement that is not
 * `SELECT ... FROM '<topic filter>' [WHERE ...]` (AWS IoT parses the whole statement; the emulator
 * checks only its shape).
 */
export function topicPatternOf(sql: string): string {
  const filter = SQL.exec(sql)?.[1];
  if (!filter)
    throw new IotServiceError("SqlParseException", `Cannot parse the rule SQL: ${sql.slice(0, 200)}`);
  return filter;
}

function ruleName(request: OperationRequest): string {
  return parseInput(ruleNameSchema, request.labels.ruleName, "ruleName");
}

/**
 * A rule that does not exist. GetTopicRule, ReplaceTopicRule and DeleteTopicRule have no
 * ResourceNotFoundException in AWS IoT's API reference
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_GetTopicRule.html); AWS answers
 * UnauthorizedException (401) for a rule name it does not know.
 */
const unknownRule = (name: string) =>
  new IotServiceError("UnauthorizedException", `Rule ${name} does not exist or is not accessible.`);

function record(context: EmulatorContext, name: string, body: unknown, createdAt?: number): TopicRuleRecord {
  const payload = parseInput(payloadSchema, body ?? {}, "topicRulePayload");
  topicPatternOf(payload.sql);
  return {
    ruleName: name,
    ruleArn: topicRuleArn(context.scope, name),
    sql: payload.sql,
    ...(payload.description !== undefined ? { description: payload.description } : {}),
    actions: payload.actions,
    ...(payload.errorAction ? { errorAction: payload.errorAction } : {}),
    ruleDisabled: payload.ruleDisabled ?? false,
    ...(payload.awsIotSqlVersion !== undefined ? { awsIotSqlVersion: payload.awsIotSqlVersion } : {}),
    createdAt: createdAt ?? context.now(),
  };
}

/** CreateTopicRule: the body is the TopicRulePayload. */
function createTopicRule(context: EmulatorContext, request: OperationRequest) {
  const name = ruleName(request);
  const rule = record(context, name, request.body);
  if (!context.state.putTopicRule(rule, "create")) {
    throw alreadyExists(`Rule ${name} already exists.`, name, rule.ruleArn);
  }
}

function getTopicRule(context: EmulatorContext, request: OperationRequest) {
  const name = ruleName(request);
  const rule = context.state.topicRule(name);
  if (!rule) throw unknownRule(name);
  return {
    ruleArn: rule.ruleArn,
    rule: {
      ruleName: rule.ruleName,
      sql: rule.sql,
      ...(rule.description !== undefined ? { description: rule.description } : {}),
      createdAt: epochSeconds(rule.createdAt),
      actions: rule.actions,
      ruleDisabled: rule.ruleDisabled,
      ...(rule.awsIotSqlVersion !== undefined ? { awsIotSqlVersion: rule.awsIotSqlVersion } : {}),
      ...(rule.errorAction ? { errorAction: rule.errorAction } : {}),
    },
  };
}

/** ListTopicRules; `topic` keeps the rules whose SQL selects from exactly that topic pattern. */
function listTopicRules(context: EmulatorContext, request: OperationRequest) {
  const maxResults = queryInteger(request.query, "maxResults", 1, 10000) ?? 1000;
  const topic = request.query.get("topic");
  const disabled = queryBoolean(request.query, "ruleDisabled");
  const rules = context.state
    .listTopicRules()
    .filter((r) => topic === null || topicPatternOf(r.sql) === topic)
    .filter((r) => disabled === undefined || r.ruleDisabled === disabled);
  const { page, nextToken } = paginate(rules, request.query.get("nextToken"), maxResults, (r) => r.ruleName);
  return {
    rules: page.map((r) => ({
      ruleArn: r.ruleArn,
      ruleName: r.ruleName,
      topicPattern: topicPatternOf(r.sql),
      createdAt: epochSeconds(r.createdAt),
      ruleDisabled: r.ruleDisabled,
    })),
    ...(nextToken ? { nextToken } : {}),
  };
}

function replaceTopicRule(context: EmulatorContext, request: OperationRequest) {
  const name = ruleName(request);
  const current = context.state.topicRule(name);
  if (!current) throw unknownRule(name);
  if (!context.state.putTopicRule(record(context, name, request.body, current.createdAt), "replace")) {
    throw unknownRule(name);
  }
}

function deleteTopicRule(context: EmulatorContext, request: OperationRequest) {
  const name = ruleName(request);
  if (!context.state.deleteTopicRule(name)) throw unknownRule(name);
}

/** Routes of the topic rule operations. */
export const topicRuleRoutes: Route[] = [
  { operation: "CreateTopicRule", method: "POST", path: "/rules/{ruleName}", handler: createTopicRule },
  { operation: "GetTopicRule", method: "GET", path: "/rules/{ruleName}", handler: getTopicRule },
  { operation: "ListTopicRules", method: "GET", path: "/rules", handler: listTopicRules },
  { operation: "ReplaceTopicRule", method: "PATCH", path: "/rules/{ruleName}", handler: replaceTopicRule },
  { operation: "DeleteTopicRule", method: "DELETE", path: "/rules/{ruleName}", handler: deleteTopicRule },
];
