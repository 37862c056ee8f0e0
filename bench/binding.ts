/**
 * npm run bench:binding — the device–user binding's cloud side (lambdas/core/binding/ through
 * DynamoDbBindingStore) against dynalite as the local stack runs it (its own child process, the
 * binding table made by local/binding-wiring.ts, the same SDK clients). Everything is measured in
 * one run next to a reference on the same dynalite — one plain conditional PutItem
 * (attribute_not_exists(pk)) through the same document client — and reported as a ratio, since
 * this machine is shared and absolute figures drift:
 *
 * (a) report + bind of a fresh token, one at a time (reportToken then bindDevice: a new device,
 *     token and user each time): p50/p99 and binds/s; ratio to the reference = how many DynamoDB
 *     round trips' worth a bind costs (the happy path makes 8 DynamoDB calls: report: charge the
 *     device's report window, put the token; bind: charge the user's failed-bind window, read the
 *     reset marker, use the token, owner slot, audit record, refund).
 * (b) 50 parallel binds of one token by 50 users: time until all settle, and exactly one winner
 *     (49 refusals, one owner, the token used by the winner); the reference is 50 parallel
 *     conditional PutItems of one key (one wins). Several rounds.
 * (c) 8 users binding different devices at once (one bind in flight per user): binds/s, next to
 *     conditional PutItems/s with 8 in flight.
 *
 * The registry is an in-memory product (single-owner), as in test/binding/token-store.property:
 * the figures are the binding store's, not the registry's product read. Reference and binding
 * runs are interleaved in rounds so both see the same machine state. Setup and warm-up untimed.
 *
 * Usage: npm run bench:binding -- [--binds 300] [--rounds 5] [--parallel 50] [--concurrent 400]
 *        [--users 8] [--json] [--help]
 */
import { randomBytes, randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoDbBindingStore } from "#adapters/dynamodb-bindings.ts";
import { type BindingDeps, bindDevice } from "#core/binding/bind-device.ts";
import { BindingRefusedError, type DeviceRef, hashToken } from "#core/binding/model.ts";
import { reportToken } from "#core/binding/report-token.ts";
import { silentLogger } from "#core/logger.ts";
import { ensureBindingTable } from "#local/binding-wiring.ts";
import { startLocalDynamo } from "#local/dynamodb.ts";
import { machine, percentile } from "./stats.ts";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const USAGE = `Usage: npm run bench:binding -- [options]
  --binds N       (a) sequential report + bind of fresh tokens (default 300)
  --rounds N      (b) rounds of parallel binds of one token (default 5)
  --parallel N    (b) binds per round (default 50)
  --concurrent N  (c) binds in total by concurrent users (default 400)
  --users N       (c) concurrent users (default 8)
  --json          one JSON object on stdout instead of the tables
  --help          this text`;

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        binds: { type: "string", default: "300" },
        rounds: { type: "string", default: "5" },
        parallel: { type: "string", default: "50" },
        concurrent: { type: "string", default: "400" },
        users: { type: "string", default: "8" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error), process.argv.includes("--json"));
  }
})();

function fail(message: string, json: boolean): never {
  if (json) console.log(JSON.stringify({ error: message }));
  else console.error(`bench:binding: ${message}\n\n${USAGE}`);
  process.exit(2);
}

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const counts = {} as Record<"binds" | "rounds" | "parallel" | "concurrent" | "users", number>;
for (const name of ["binds", "rounds", "parallel", "concurrent", "users"] as const) {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1)
    fail(`--${name} must be a positive integer (got "${values[name]}")`, values.json);
  counts[name] = n;
}
if (counts.parallel < 2) fail("--parallel must be at least 2 (a race needs two)", values.json);

const TABLE = "bench-bindings";
const PRODUCT = "bench-single";
const dynamo = await startLocalDynamo({ port: 0, host: "127.0.0.1", tableName: "bench-registry-unused" });
try {
  await ensureBindingTable(dynamo.client, TABLE);
  const store = new DynamoDbBindingStore(dynamo.documentClient, TABLE);
  const deps: BindingDeps = {
    store,
    logger: silentLogger,
    registry: {
      getDevice: async () => undefined,
      getProduct: async (productKey) =>
        productKey === PRODUCT
          ? { productKey, binding: { ownership: "single-owner", tokenTtlSeconds: 300 } }
          : undefined,
    },
    config: { phoneTokenTtlSeconds: 300, maxFailedBinds: 10, failedBindWindowSeconds: 600 },
  };
  const freshToken = () => randomBytes(16).toString("hex").toUpperCase();
  const freshDevice = (): DeviceRef => ({ productKey: PRODUCT, deviceName: `dev-${randomUUID()}` });
  const user = (userId: string = randomUUID()) => ({ userId, username: "bench", operator: false });
  /** The reference: one plain conditional PutItem (a new key, or `key` for a race). */
  const put = (key = `REF#${randomUUID()}`) =>
    dynamo.documentClient.send(
      new PutCommand({
        TableName: TABLE,
        Item: { pk: key, sk: "REF", at: Date.now() },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
  const reportAndBind = async (userId?: string) => {
    const device = freshDevice();
    const token = freshToken();
    if ((await reportToken(deps, { device, token })) !== "recorded") throw new Error("report: not recorded");
    const bound = await bindDevice(deps, { user: user(userId), device, token });
    if (!bound.created) throw new Error("bind: not created");
  };
  const timed = async (task: () => Promise<unknown>) => {
    const t = performance.now();
    await task();
    return performance.now() - t;
  };

  // Warm-up (JIT, keep-alive sockets, dynalite's first writes), untimed.
  for (let i = 0; i < 30; i++) {
    await put();
    await reportAndBind();
  }

  // (a) sequential, interleaved in rounds of 50.
  const a = { put: [] as number[], bind: [] as number[], putSeconds: 0, bindSeconds: 0 };
  for (let done = 0; done < counts.binds; done += 50) {
    const round = Math.min(50, counts.binds - done);
    for (let i = 0; i < round; i++) a.put.push(await timed(() => put()));
    for (let i = 0; i < round; i++) a.bind.push(await timed(() => reportAndBind()));
  }
  a.put.sort((x, y) => x - y);
  a.bind.sort((x, y) => x - y);
  a.putSeconds = a.put.reduce((s, x) => s + x, 0) / 1000;
  a.bindSeconds = a.bind.reduce((s, x) => s + x, 0) / 1000;

  // (b) one token, N users at once; the reference races N conditional puts of one key.
  const b: Array<{ round: number; settleMs: number; referenceMs: number; winners: number; refused: number }> =
    [];
  for (let round = 1; round <= counts.rounds; round++) {
    const key = `RACE#${randomUUID()}`;
    let referenceWinners = 0;
    const referenceMs = await timed(async () => {
      const results = await Promise.allSettled(Array.from({ length: counts.parallel }, () => put(key)));
      referenceWinners = results.filter((r) => r.status === "fulfilled").length;
    });
    if (referenceWinners !== 1) throw new Error(`(b) reference: ${referenceWinners} conditional puts won`);
    const device = freshDevice();
    const token = freshToken();
    await reportToken(deps, { device, token });
    const users = Array.from({ length: counts.parallel }, () => user());
    let results: PromiseSettledResult<Awaited<ReturnType<typeof bindDevice>>>[] = [];
    const settleMs = await timed(async () => {
      results = await Promise.allSettled(users.map((u) => bindDevice(deps, { user: u, device, token })));
    });
    const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [users[i]!.userId] : []));
    const refused = results.filter(
      (r) => r.status === "rejected" && r.reason instanceof BindingRefusedError,
    ).length;
    const owners = await store.listOwners(device);
    const used = await store.getToken(hashToken(token));
    if (
      won.length !== 1 ||
      refused !== counts.parallel - 1 ||
      owners.length !== 1 ||
      owners[0]?.userId !== won[0] ||
      used?.usedBy !== won[0]
    ) {
      throw new Error(
        `(b) round ${round}: ${won.length} winners, ${refused} refusals, ${owners.length} owners — not exactly one`,
      );
    }
    b.push({ round, settleMs, referenceMs, winners: won.length, refused });
  }

  // (c) U users, one bind in flight each, different devices; interleaved with U-way puts.
  const c = { puts: 0, putSeconds: 0, binds: 0, bindSeconds: 0, bindLatencies: [] as number[] };
  const rounds = 4;
  for (let r = 0; r < rounds; r++) {
    const share = Math.ceil(counts.concurrent / rounds);
    const referenceCount = share * 3; // a put is a few times cheaper: comparable wall time
    let next = 0;
    let t = performance.now();
    await Promise.all(
      Array.from({ length: counts.users }, async () => {
        while (next < referenceCount) {
          next++;
          await put();
        }
      }),
    );
    c.putSeconds += (performance.now() - t) / 1000;
    c.puts += referenceCount;
    next = 0;
    t = performance.now();
    await Promise.all(
      Array.from({ length: counts.users }, async () => {
        const userId = randomUUID();
        while (next < share) {
          next++;
          c.bindLatencies.push(await timed(() => reportAndBind(userId)));
        }
      }),
    );
    c.bindSeconds += (performance.now() - t) / 1000;
    c.binds += share;
  }
  c.bindLatencies.sort((x, y) => x - y);

  const result = {
    machine: machine(),
    loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
    sequential: {
      binds: a.bind.length,
      bindsPerSecond: a.bind.length / a.bindSeconds,
      p50Ms: percentile(a.bind, 50),
      p99Ms: percentile(a.bind, 99),
      reference: {
        puts: a.put.length,
        putsPerSecond: a.put.length / a.putSeconds,
        p50Ms: percentile(a.put, 50),
        p99Ms: percentile(a.put, 99),
      },
      ratioP50: percentile(a.bind, 50) / percentile(a.put, 50),
      ratioP99: percentile(a.bind, 99) / percentile(a.put, 99),
    },
    race: {
      parallel: counts.parallel,
      rounds: b,
      exactlyOneWinner: b.every((r) => r.winners === 1 && r.refused === counts.parallel - 1),
      settleMsMedian: median(b.map((r) => r.settleMs)),
      referenceMsMedian: median(b.map((r) => r.referenceMs)),
      ratio: median(b.map((r) => r.settleMs / r.referenceMs)),
    },
    concurrent: {
      users: counts.users,
      binds: c.binds,
      bindsPerSecond: c.binds / c.bindSeconds,
      p50Ms: percentile(c.bindLatencies, 50),
      p99Ms: percentile(c.bindLatencies, 99),
      reference: { puts: c.puts, putsPerSecond: c.puts / c.putSeconds },
      ratio: c.puts / c.putSeconds / (c.binds / c.bindSeconds),
    },
  };
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else print(result);
} catch (error) {
  if (values.json)
    console.log(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
  else console.error(error);
  process.exitCode = 1;
} finally {
  await dynamo.close();
}

function median(xs: number[]): number {
  return percentile(
    [...xs].sort((x, y) => x - y),
    50,
  );
}

type Result = {
  machine: string;
  loadAverage: number[];
  sequential: {
    binds: number;
    bindsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
    reference: { puts: number; putsPerSecond: number; p50Ms: number; p99Ms: number };
    ratioP50: number;
    ratioP99: number;
  };
  race: {
    parallel: number;
    rounds: Array<{ round: number; settleMs: number; referenceMs: number; winners: number; refused: number }>;
    exactlyOneWinner: boolean;
    ratio: number;
  };
  concurrent: {
    users: number;
    binds: number;
    bindsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
    reference: { puts: number; putsPerSecond: number };
    ratio: number;
  };
};

function print(r: Result): void {
  const s = r.sequential;
  console.log(`\nMachine: ${r.machine}, load average ${r.loadAverage.join(" ")}`);
  console.log("\n(a) report + bind of a fresh token, one at a time (dynalite, child process):\n");
  console.log("| what | count | per second | p50 ms | p99 ms |");
  console.log("|---|---:|---:|---:|---:|");
  console.log(
    `| reference: conditional PutItem | ${s.reference.puts} | ${s.reference.putsPerSecond.toFixed(0)} | ${s.reference.p50Ms.toFixed(2)} | ${s.reference.p99Ms.toFixed(2)} |`,
  );
  console.log(
    `| report + bind | ${s.binds} | ${s.bindsPerSecond.toFixed(0)} | ${s.p50Ms.toFixed(2)} | ${s.p99Ms.toFixed(2)} |`,
  );
  console.log(
    `\nreport + bind ÷ PutItem: p50 ${s.ratioP50.toFixed(2)}, p99 ${s.ratioP99.toFixed(2)} round trips' worth (8 DynamoDB calls on the happy path)`,
  );
  console.log(`\n(b) ${r.race.parallel} parallel binds of one token (one user each), time to settle:\n`);
  console.log(
    "| round | binds settle ms | reference: parallel conditional PutItems of one key, ms | ratio | winners | refused |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|");
  for (const x of r.race.rounds) {
    console.log(
      `| ${x.round} | ${x.settleMs.toFixed(1)} | ${x.referenceMs.toFixed(1)} | ${(x.settleMs / x.referenceMs).toFixed(2)} | ${x.winners} | ${x.refused} |`,
    );
  }
  console.log(
    `\nexactly one winner in every round: ${r.race.exactlyOneWinner ? "yes" : "NO"}; median ratio ${r.race.ratio.toFixed(2)}`,
  );
  const c = r.concurrent;
  console.log(`\n(c) ${c.users} users binding different devices at once (report + bind each):\n`);
  console.log("| what | count | per second | p50 ms | p99 ms |");
  console.log("|---|---:|---:|---:|---:|");
  console.log(
    `| reference: conditional PutItem, ${c.users} in flight | ${c.reference.puts} | ${c.reference.putsPerSecond.toFixed(0)} | | |`,
  );
  console.log(
    `| report + bind, ${c.users} users | ${c.binds} | ${c.bindsPerSecond.toFixed(0)} | ${c.p50Ms.toFixed(2)} | ${c.p99Ms.toFixed(2)} |`,
  );
  console.log(`\nPutItems/s ÷ binds/s = ${c.ratio.toFixed(2)} (same run)`);
}
