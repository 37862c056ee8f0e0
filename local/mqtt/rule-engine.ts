import type { QueuedRegistration } from "#core/jitr/process-registration-batch.ts";
import type { Logger } from "#core/logger.ts";
import type { TopicRuleDefinition } from "#templates/catalog.ts";
import { LocalQueue, type LocalQueueOptions } from "./local-queue.ts";
import { isValidTopicFilter, topicMatchesFilter } from "./topic-filter.ts";

/** A rule action's target: the handler a Lambda action would invoke, called in-process. */
export type RuleTarget = (payload: unknown, topic: string) => Promise<unknown>;

/**
 * A value a rule's SELECT adds to the message: AWS IoT SQL functions the local engine runs
 * (https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html): `topic(n)`
 * (the n-th topic level, from 1), `topic()` (the whole topic: "If no parameter is specified, the
 * entire topic is returned"; the binding rules use it because Alibaba topics start with '/', where
 * level numbering is easy to get wrong), `principal()` (the certificate id of an X.509 client),
 * `clientid()`.
 */
export type SelectedValue = { as: string } & (
  | { fn: "topic"; level?: number }
  | { fn: "principal" }
  | { fn: "clientid" }
);

/** Who published a message (the MQTT connection), for `principal()` and `clientid()`. */
export type PublishContext = { clientId?: string; principal?: string };

/** What a queue consumer answers: the partial batch response, and what became of each message. */
export type QueuedBatchAnswer = {
  batchItemFailures: { itemIdentifier: string }[];
  /** By message id: delivered (deleted) with the consumer's result, or returned to the queue. */
  outcomes?: ReadonlyMap<string, { delivered: boolean; result?: unknown; error?: string }>;
};

/**
 * A target reached through a queue instead of an asynchronous invocation: the rule's `sqs` action
 * into a queue that a Lambda event source mapping consumes (JITR on AWS, lib/constructs/jitr.ts).
 * The rule file is the same; which action reaches the target is the deployment's choice.
 */
export type QueuedTarget = {
  queue: Omit<LocalQueueOptions, "consume" | "onDeadLetter" | "onConsumerError">;
  consume: (batch: readonly QueuedRegistration[]) => Promise<QueuedBatchAnswer>;
};

/** A rule as the engine runs it. */
export type LoadedRule = { ruleName: string; topicFilter: string; target: string; select: SelectedValue[] };

/** What became of one message for one rule. */
export type RuleDelivery = {
  ruleName: string;
  target: string;
  topic: string;
  /** `queued`: sent to the target's queue; `retrying`: its consumer returned it to the queue. */
  outcome: "delivered" | "failed" | "skipped" | "queued" | "retrying";
  /** The message as the target got it (parsed JSON); absent when skipped. */
  payload?: unknown;
  /** What the target returned (delivered). */
  result?: unknown;
  /** `Name: message` of what the target threw (failed), or why the message was skipped. */
  error?: string;
};

/** A failed delivery, as the rule's error action (an SQS queue in AWS) would keep it. */
export type DeadLetter = {
  ruleName: string;
  target: string;
  topic: string;
  payload: unknown;
  error: string;
  failedAt: number;
};

/** Options of the RuleEngine. */
export type RuleEngineOptions = {
  rules: readonly TopicRuleDefinition[];
  /** Handlers by target name; every rule's target must be here or in `queued`. */
  targets: ReadonlyMap<string, RuleTarget>;
  /** Targets reached through a local queue (SQS semantics, see local-queue.ts), by target name. */
  queued?: ReadonlyMap<string, QueuedTarget>;
  logger: Logger;
  /** Oldest dead letters are dropped beyond this (default 1000). */
  maxDeadLetters?: number;
  /** Waits before each retry of a failed delivery (default [1000, 2000]: two retries, like Lambda). */
  retryDelaysMs?: readonly number[];
  clock?: () => number;
};

/**
 * A rule created through the AWS IoT API (CreateTopicRule / ReplaceTopicRule), as the emulator
 * stores it; `setApiRules` runs those it can.
 */
export type ApiTopicRule = {
  ruleName: string;
  sql: string;
  ruleDisabled: boolean;
  actions: readonly Record<string, unknown>[];
};

/** The function name of a Lambda function ARN (`...:function:<name>[:qualifier]`), or the value itself. */
function functionName(functionArn: string): string {
  return /:function:([^:]+)/.exec(functionArn)?.[1] ?? functionArn;
}

/** A rule the local engine cannot run; thrown when the rules are loaded. */
export class RuleDefinitionError extends Error {
  override readonly name = "RuleDefinitionError";
}

const SELECT_ALL =
  /^\s*SELECT\s+\*((?:\s*,\s*[a-z]+\(\s*\d*\s*\)\s+AS\s+[A-Za-z_][A-Za-z0-9_]*)*)\s+FROM\s+'([^']+)'\s*;?\s*$/i;
const SELECTED = /([a-z]+)\(\s*(\d*)\s*\)\s+AS\s+([A-Za-z_][A-Za-z0-9_]*)/gi;
const RECENT_DELIVERIES = 100;

/**
 * Reads the SQL forms the local engine runs, `SELECT * FROM '<topic filter>'` optionally with
 * `, topic(n) AS name`, `, principal() AS name`, `, clientid() AS name`, and returns the filter.
 * @throws RuleDefinitionError for any other statement or a malformed filter
 */
export function parseRuleSql(sql: string): string {
  return parseRuleStatement(sql).topicFilter;
}

/** The filter and the values a rule's SELECT adds (see parseRuleSql). */
export function parseRuleStatement(sql: string): { topicFilter: string; select: SelectedValue[] } {
  const match = SELECT_ALL.exec(sql);
  if (!match) {
    throw new RuleDefinitionError(
      `The local rule engine only runs "SELECT *[, topic(n) | principal() | clientid() AS name] FROM '<topic filter>'"; got "${sql.slice(0, 200)}".`,
    );
  }
  const filter = match[2] as string;
  if (!isValidTopicFilter(filter)) {
    throw new RuleDefinitionError(`"${filter}" is not a valid MQTT topic filter.`);
  }
  const select = [...(match[1] ?? "").matchAll(SELECTED)].map(([, fn, arg, as]): SelectedValue => {
    const name = (fn ?? "").toLowerCase();
    if (name === "topic" && arg) return { fn: "topic", level: Number(arg), as: as as string };
    if (name === "topic") return { fn: "topic", as: as as string };
    if ((name === "principal" || name === "clientid") && !arg) return { fn: name, as: as as string };
    throw new RuleDefinitionError(`The local rule engine does not run the SQL function ${fn}(${arg}).`);
  });
  return { topicFilter: filter, select };
}

/** The message a rule's target gets: the payload's fields plus the values its SELECT adds. */
function selected(rule: LoadedRule, message: unknown, topic: string, context: PublishContext): unknown {
  if (rule.select.length === 0) return message;
  const fields: Record<string, unknown> =
    message !== null && typeof message === "object" && !Array.isArray(message) ? { ...message } : {};
  for (const value of rule.select) {
    const found =
      value.fn === "topic"
        ? value.level === undefined
          ? topic
          : topic.split("/")[value.level - 1]
        : value.fn === "principal"
          ? context.principal
          : context.clientId;
    if (found !== undefined) fields[value.as] = found;
  }
  return fields;
}

/**
 * The local stand-in for the AWS IoT rules engine with a Lambda action and an error action: each
 * message whose topic matches a rule's filter is parsed as JSON and handed to the rule's target.
 * A target that throws is retried as Lambda retries an asynchronous invocation (twice, after a
 * delay: `retryDelaysMs`, default 1 s and 2 s instead of AWS's minutes), then logged (names only,
 * never the payload) and kept as a dead letter. Deliveries run in the background; `settled()`
 * waits for them.
 */
export class RuleEngine {
  /** The loaded rules, in definition order. */
  readonly rules: readonly LoadedRule[];
  private readonly targets: ReadonlyMap<string, RuleTarget>;
  private readonly logger: Logger;
  private readonly maxDeadLetters: number;
  private readonly retryDelaysMs: readonly number[];
  private readonly clock: () => number;
  private readonly dead: DeadLetter[] = [];
  private readonly recent: RuleDelivery[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Rules created through the API (`setApiRules`), one entry per action the engine can run. */
  private apiRules: readonly LoadedRule[] = [];
  /** The queues of queued targets, by target name. */
  readonly queues: ReadonlyMap<string, LocalQueue>;
  /** Where each queued message came from, by message id, until it is deleted or dead-lettered. */
  private readonly queuedFrom = new Map<
    string,
    { ruleName: string; target: string; topic: string; payload: unknown }
  >();

  /** @throws RuleDefinitionError for unsupported SQL, a bad filter, an unknown target or a duplicate name */
  constructor(options: RuleEngineOptions) {
    this.targets = options.targets;
    this.logger = options.logger;
    this.maxDeadLetters = options.maxDeadLetters ?? 1000;
    this.retryDelaysMs = options.retryDelaysMs ?? [1000, 2000];
    this.clock = options.clock ?? Date.now;
    const queues = new Map<string, LocalQueue>();
    for (const [target, queued] of options.queued ?? []) queues.set(target, this.makeQueue(target, queued));
    this.queues = queues;
    const names = new Set<string>();
    this.rules = options.rules.map((rule) => {
      const where = `Rule ${rule.ruleName}`;
      if (names.has(rule.ruleName)) throw new RuleDefinitionError(`${where} is defined twice.`);
      names.add(rule.ruleName);
      if (!this.targets.has(rule.target) && !queues.has(rule.target)) {
        throw new RuleDefinitionError(
          `${where} targets "${rule.target}", which is not one of: ${[...this.targets.keys(), ...queues.keys()].join(", ")}.`,
        );
      }
      try {
        return { ruleName: rule.ruleName, ...parseRuleStatement(rule.sql), target: rule.target };
      } catch (error) {
        throw new RuleDefinitionError(`${where}: ${(error as Error).message}`, { cause: error });
      }
    });
  }

  /** The rules whose filter matches a topic (the shipped ones, then those created through the API). */
  matchingRules(topic: string): LoadedRule[] {
    return [...this.rules, ...this.apiRules].filter((rule) => topicMatchesFilter(rule.topicFilter, topic));
  }

  /**
   * Runs these API-created rules from now on (replacing the previous set): each enabled rule whose
   * SQL the local engine reads (see parseRuleStatement) and a `lambda` action whose function name is one of the targets
   * (e.g. `arn:aws:lambda:...:function:jitr-registration`). Other SQL and other actions cannot run
   * locally: they are skipped with a warning (names only).
   */
  setApiRules(rules: readonly ApiTopicRule[]): void {
    const loaded: LoadedRule[] = [];
    for (const rule of rules) {
      if (rule.ruleDisabled) continue;
      let statement: ReturnType<typeof parseRuleStatement>;
      try {
        statement = parseRuleStatement(rule.sql);
      } catch {
        this.logger.warn("rule engine: API rule not run locally (its SQL is beyond the local engine)", {
          ruleName: rule.ruleName,
        });
        continue;
      }
      for (const action of rule.actions) {
        const lambda = action.lambda as { functionArn?: unknown } | undefined;
        const target = typeof lambda?.functionArn === "string" ? functionName(lambda.functionArn) : undefined;
        if (target !== undefined && (this.targets.has(target) || this.queues.has(target))) {
          loaded.push({ ruleName: rule.ruleName, ...statement, target });
        } else {
          this.logger.warn("rule engine: API rule action not run locally", {
            ruleName: rule.ruleName,
            action: Object.keys(action).join(",") || "none",
            ...(target !== undefined ? { target } : {}),
          });
        }
      }
    }
    this.apiRules = loaded;
  }

  /**
   * Delivers one message to every matching rule's target, concurrently. Resolves (never rejects)
   * with what became of it per rule once every target has finished.
   */
  dispatch(
    topic: string,
    payload: Uint8Array | string,
    context: PublishContext = {},
  ): Promise<RuleDelivery[]> {
    const rules = this.matchingRules(topic);
    if (rules.length === 0) return Promise.resolve([]);
    const delivery = Promise.all(rules.map((rule) => this.deliver(rule, topic, payload, context)));
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
    return delivery;
  }

  /**
   * Resolves when every delivery started so far (and any they started) has finished, and every
   * queue is empty (each message deleted or dead-lettered, retries included).
   */
  async settled(): Promise<void> {
    for (;;) {
      if (this.inFlight.size > 0) {
        await Promise.allSettled([...this.inFlight]);
        continue;
      }
      const busy = [...this.queues.values()].filter((q) => q.depth > 0 || q.inFlightBatches > 0);
      if (busy.length === 0) return;
      await Promise.all(busy.map((q) => q.drained()));
    }
  }

  /** Stops the queues' timers (the stack is stopping). */
  close(): void {
    for (const queue of this.queues.values()) queue.close();
  }

  private makeQueue(target: string, queued: QueuedTarget): LocalQueue {
    const queue: LocalQueue = new LocalQueue({
      ...queued.queue,
      consume: async (batch) => {
        const answer = await queued.consume(batch);
        const failed = new Set(answer.batchItemFailures.map((f) => f.itemIdentifier));
        for (const message of batch) {
          const from = this.queuedFrom.get(message.messageId);
          if (!from) continue;
          const outcome = answer.outcomes?.get(message.messageId);
          const base = {
            ruleName: from.ruleName,
            target: from.target,
            topic: from.topic,
            payload: from.payload,
          };
          if (failed.has(message.messageId)) {
            this.record({
              ...base,
              outcome: "retrying",
              ...(outcome?.error ? { error: outcome.error } : {}),
            });
          } else {
            this.queuedFrom.delete(message.messageId);
            this.record({ ...base, outcome: "delivered", ...(outcome ? { result: outcome.result } : {}) });
          }
        }
        return answer;
      },
      onDeadLetter: (message) => {
        const from = this.queuedFrom.get(message.messageId) ?? {
          ruleName: "unknown",
          target,
          topic: "",
          payload: message.body,
        };
        this.queuedFrom.delete(message.messageId);
        const error = `received ${message.receiveCount} times (maxReceiveCount), moved to the dead-letter queue`;
        this.logger.error("rule engine: queued message dead-lettered", {
          ruleName: from.ruleName,
          target,
          receiveCount: message.receiveCount,
        });
        this.dead.push({ ...from, error, failedAt: this.clock() });
        if (this.dead.length > this.maxDeadLetters) this.dead.shift();
        this.record({ ...from, outcome: "failed", error });
      },
      onConsumerError: (error) => {
        this.logger.error("rule engine: queue consumer failed; its batch stays in the queue", {
          target,
          error: error instanceof Error ? error.name : "unknown",
        });
      },
    });
    return queue;
  }

  /** Failed deliveries, oldest first (a copy). */
  get deadLetters(): readonly DeadLetter[] {
    return [...this.dead];
  }

  /** The last 100 deliveries, oldest first (a copy). */
  get recentDeliveries(): readonly RuleDelivery[] {
    return [...this.recent];
  }

  private async deliver(
    rule: LoadedRule,
    topic: string,
    payload: Uint8Array | string,
    context: PublishContext,
  ) {
    const base = { ruleName: rule.ruleName, target: rule.target, topic };
    let message: unknown;
    try {
      const parsed = JSON.parse(
        typeof payload === "string" ? payload : Buffer.from(payload).toString("utf8"),
      );
      message = selected(rule, parsed, topic, context);
    } catch {
      this.logger.warn("rule engine: payload is not JSON, rule skipped", base);
      return this.record({ ...base, outcome: "skipped", error: "the payload is not JSON" });
    }
    const queue = this.queues.get(rule.target);
    if (queue) {
      // The rule's sqs action: SendMessage with the selected message as the body (useBase64 false).
      const messageId = queue.send(JSON.stringify(message));
      this.queuedFrom.set(messageId, { ...base, payload: message });
      return this.record({ ...base, outcome: "queued", payload: message });
    }
    const target = this.targets.get(rule.target) as RuleTarget;
    try {
      const result = await this.invokeWithRetries(target, message, topic, base);
      this.logger.debug("rule engine: delivered", base);
      return this.record({ ...base, outcome: "delivered", payload: message, result });
    } catch (error) {
      const name = error instanceof Error ? error.name : "unknown";
      const described = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.logger.error("rule engine: delivery failed, kept as a dead letter", { ...base, error: name });
      this.dead.push({ ...base, payload: message, error: described, failedAt: this.clock() });
      if (this.dead.length > this.maxDeadLetters) this.dead.shift();
      return this.record({ ...base, outcome: "failed", payload: message, error: described });
    }
  }

  /** Calls the target; on failure waits and calls again, once per retry delay, then rethrows. */
  private async invokeWithRetries(
    target: RuleTarget,
    message: unknown,
    topic: string,
    base: Record<string, string>,
  ): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await target(message, topic);
      } catch (error) {
        const delay = this.retryDelaysMs[attempt];
        if (delay === undefined) throw error;
        this.logger.warn("rule engine: delivery failed, retrying", {
          ...base,
          attempt: attempt + 1,
          error: error instanceof Error ? error.name : "unknown",
        });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private record(delivery: RuleDelivery): RuleDelivery {
    this.recent.push(delivery);
    if (this.recent.length > RECENT_DELIVERIES) this.recent.shift();
    return delivery;
  }
}
