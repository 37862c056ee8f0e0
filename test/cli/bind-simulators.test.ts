import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type SimulateOptions, startDeviceSimulation } from "#cli/commands/device-simulate.ts";
import { describeCliError } from "#cli/main.ts";
import type { DeviceEvent } from "#cli/simulators/bind-device.ts";
import { DEFAULT_BINDING_TABLE } from "#local/binding-wiring.ts";
import type { LocalStack } from "#local/stack.ts";
import { recordingLogger } from "#test/local/mqtt/recording-logger.ts";
import {
  seedBindingProduct,
  seedProduct,
  startBindingStack,
  vendWithCsr,
} from "#test/support/local-stack.ts";
import { type PhoneUser, phoneUsers } from "#test/support/phone-users.ts";
import { runOnramp } from "#test/support/run-cli.ts";
import { PROJECT_ROOT } from "#test/support/spawned-stack.ts";

/**
 * The binding simulators against the local stack: `onramp device simulate --bind` (a real MQTT
 * device, a real CoAP server on 127.0.0.1) and `onramp phone ...` (a real CoAP client and
 * listener, the phone API over HTTP), through the cloud side (topic rules → binding-report,
 * phone API). Notifies go to a unicast port (`--notify-to`, `--no-multicast`): a test host may
 * have no multicast route. Short reply timeouts and notify steps keep runs short; nothing here
 * asserts a duration.
 */
describe("binding simulators on the local stack", () => {
  let stack: LocalStack;
  let dir: string;
  let endpoints: string;
  let certDir: string;
  let secrets: { lamp: (dn: string) => string };
  const logger = recordingLogger();
  let nowMs = Date.now();
  const running: { stop(): Promise<void> }[] = [];
  const users = phoneUsers(["alice", "bob", "carol"]);
  const jwt = (user: PhoneUser) => stack.binding.issuer.issueIdToken(user);

  before(async () => {
    stack = await startBindingStack({ logger, dynamoFaultInjection: true });
    dir = mkdtempSync(join(tmpdir(), "onramp-bind-sim-"));
    endpoints = join(dir, "endpoints.json");
    writeFileSync(join(dir, "root-ca.pem"), stack.rootCaPem);
    writeFileSync(endpoints, JSON.stringify({ ...stack.endpoints, rootCa: join(dir, "root-ca.pem") }));
    const lamps = await seedBindingProduct(
      stack.services,
      { productKey: "sim-lamp", name: "Lamp", ownership: "shared", tokenTtlSeconds: 300 },
      ["lamp-01", "lamp-02", "lamp-03", "lamp-04"],
    );
    secrets = { lamp: (dn) => lamps.secretFor(dn) };
    const certs = await seedProduct(stack.services, { productKey: "sim-cert", name: "Cert" }, ["SIMC-0001"]);
    const { keyPem, certificatePem } = await vendWithCsr(stack.endpoints.api, {
      productKey: "sim-cert",
      serialNumber: "SIMC-0001",
      secret: certs.secretFor("SIMC-0001"),
    });
    certDir = join(dir, "device-SIMC-0001");
    mkdirSync(certDir);
    writeFileSync(join(certDir, "device.key"), keyPem, { mode: 0o600 });
    writeFileSync(join(certDir, "device.crt"), certificatePem);
  });

  after(async () => {
    for (const device of running) await device.stop();
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const saved = (deviceName: string) => {
    const file = join(dir, `${deviceName}.json`);
    const credentials = {
      scheme: "aliyun",
      productKey: "sim-lamp",
      deviceName,
      deviceSecret: secrets.lamp(deviceName),
    };
    writeFileSync(file, JSON.stringify(credentials), { mode: 0o600 });
    return file;
  };

  /** A lamp (sim-lamp) logging in with its device secret, started as `device()` starts one. */
  const lampDevice = (deviceName: string, options: Partial<SimulateOptions> = {}) =>
    device({ productKey: "sim-lamp", deviceName, deviceSecret: secrets.lamp(deviceName), ...options });

  /** A device started through the command's own code path, its steps recorded. */
  async function device(options: Partial<SimulateOptions> & { deviceName: string; productKey: string }) {
    const events: DeviceEvent[] = [];
    const waiters: { test: (e: DeviceEvent) => boolean; resolve: (e: DeviceEvent) => void }[] = [];
    const log = (event: DeviceEvent) => {
      events.push(event);
      for (const w of [...waiters]) {
        if (w.test(event)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    };
    const simulated = await startDeviceSimulation(
      {
        bind: true,
        lanPort: "0",
        lanHost: "127.0.0.1",
        multicast: false,
        replyTimeout: "1",
        notifyStep: "20",
        endpoints,
        showTokens: true,
        ...options,
      },
      log,
      { now: () => nowMs },
    );
    running.push(simulated);
    /** The n-th event (1-based) of this name, now or when it comes. */
    const nth = (name: string, n = 1) => {
      const seen = events.filter((e) => e.event === name);
      if (seen.length >= n) return Promise.resolve(seen[n - 1] as DeviceEvent);
      let count = seen.length;
      return new Promise<DeviceEvent>((resolve) =>
        waiters.push({ test: (e) => e.event === name && ++count === n, resolve }),
      );
    };
    return { ...simulated, events, nth, texts: () => events.map((e) => e.text) };
  }

  /** `onramp ...args --json` in-process; an error comes back as the {error} body `main` would print. */
  const cli = async (...args: string[]) => {
    const run = await runOnramp(...args, "--json");
    const described = run.error === undefined ? undefined : describeCliError(run.error);
    if (run.error !== undefined && !described) throw run.error;
    const text = run.stdout.trim();
    // biome-ignore lint/suspicious/noExplicitAny: the commands print several JSON shapes
    let body: any;
    if (described) body = { error: { code: described.code, message: described.message } };
    else if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = JSON.parse(text.split("\n").at(-1) as string);
      }
    }
    return { ...run, body };
  };
  /** `onramp phone devices` as `user`. */
  const devicesOf = async (user: PhoneUser) =>
    cli("phone", "devices", "--id-token", await jwt(user), "--endpoints", endpoints);
  const get = (port: number, extra: string[] = []) =>
    cli(
      "phone",
      "discover",
      "--no-listen",
      "--no-multicast",
      "--device",
      `127.0.0.1:${port}`,
      "--timeout",
      "1",
      ...extra,
    );

  it("path 1: a certificate device reports, the cloud answers, it notifies; the phone hears it and binds; a second phone with that token is refused", async () => {
    const phonePort = String(40_000 + Math.floor(Math.random() * 20_000));
    const heard = cli(
      ...["phone", "discover", "--listen", phonePort, "--no-multicast", "--first", "--timeout", "20"],
    );
    const lamp = await device({
      productKey: "sim-cert",
      deviceName: "SIMC-0001",
      dir: certDir,
      notifyTo: [`127.0.0.1:${phonePort}`],
    });
    lamp.device.beginBinding();
    const found = await heard;
    assert.equal(found.exitCode, 0, String(found.error));
    const [seen] = found.body.devices as {
      productKey: string;
      deviceName: string;
      token: string;
      via: string;
    }[];
    assert.deepEqual(
      { productKey: seen?.productKey, deviceName: seen?.deviceName, via: seen?.via },
      { productKey: "sim-cert", deviceName: "SIMC-0001", via: "notify" },
    );
    const reported = await lamp.nth("report-token");
    assert.equal(reported.details?.token, seen?.token, "the notify carries the reported token");
    // The phone answered the notify: the device stops notifying and moves on to a new token.
    await lamp.nth("notify-answered");

    // The seeds' troubleshooting keys, in the order the seeds list them.
    const keys = [
      "mqtt connect success!",
      "sub things/SIMC-0001/sys/thing/awss/enrollee/match_reply success",
      "Register new resource /sys/device/info/get success",
      'report token:{"id":"0","version":"1.0","method":"thing.awss.enrollee.match"',
      "Topic Name : things/SIMC-0001/sys/thing/awss/enrollee/match_reply",
      "topic be matched",
      "awss_report_token_reply",
      "topic:/sys/device/info/notify",
      'payload:{"id":"1","version":"1.0","method":"device.info.notify"',
    ];
    const texts = lamp.texts();
    let at = -1;
    for (const key of keys) {
      const next = texts.findIndex((t, i) => i > at && t.includes(key));
      assert.ok(next > at, `"${key}" after the previous key in:\n${texts.join("\n")}`);
      at = next;
    }

    const token = seen?.token as string;
    const bound = await cli(
      ...["phone", "bind", "--product-key", "sim-cert", "--device-name", "SIMC-0001", "--token", token],
      ...["--id-token", await jwt(users.alice), "--endpoints", endpoints],
    );
    assert.equal(bound.exitCode, 0, String(bound.error));
    assert.equal(bound.body.userId, users.alice.userId);
    assert.equal(bound.body.created, true);
    const devices = await devicesOf(users.alice);
    assert.deepEqual(
      (devices.body.devices as { deviceName: string }[]).map((d) => d.deviceName),
      ["SIMC-0001"],
    );
    // Seed 001's phone1/phone2: both heard the token, the other one was first.
    const late = await cli(
      ...["phone", "bind", "--product-key", "sim-cert", "--device-name", "SIMC-0001", "--token", token],
      ...["--id-token", await jwt(users.bob), "--endpoints", endpoints],
    );
    assert.equal(late.exitCode, 1);
    assert.equal(late.body.error.code, "BINDING_REFUSED");
    // Unbind, then the list is empty; unbinding again is fine.
    for (let i = 0; i < 2; i++) {
      const unbound = await cli(
        ...["phone", "unbind", "--product-key", "sim-cert", "--device-name", "SIMC-0001"],
        ...["--id-token", await jwt(users.alice), "--endpoints", endpoints],
      );
      assert.equal(unbound.exitCode, 0, String(unbound.error));
    }
    const none = await devicesOf(users.alice);
    assert.deepEqual(none.body.devices, []);
    await lamp.stop();
  });

  it("path 2: a GET is answered only with an acknowledged token, then the device reports a new one; two phones bind a shared device", async () => {
    const lamp = await lampDevice("lamp-01", {
      notifyCount: "0",
    });
    lamp.device.beginBinding();
    await lamp.nth("report-token-reply");
    const first = await get(lamp.lanPort);
    assert.equal(first.exitCode, 0, String(first.error));
    const tokenA = first.body.devices[0].token as string;
    assert.equal(first.body.devices[0].via, "get");
    assert.equal(tokenA, (await lamp.nth("report-token")).details?.token);
    await lamp.nth("sending");
    await lamp.nth("update-token");
    // The fresh token is reported and acknowledged; the next GET gets it.
    await lamp.nth("report-token-reply", 2);
    const second = await get(lamp.lanPort, ["--product-key", "sim-lamp", "--device-name", "lamp-01"]);
    assert.equal(second.exitCode, 0, String(second.error));
    const tokenB = second.body.devices[0].token as string;
    assert.notEqual(tokenB, tokenA, "rotated after the GET");
    for (const [user, token] of [
      [users.bob, tokenA],
      [users.carol, tokenB],
    ] as const) {
      const bound = await cli(
        ...["phone", "bind", "--product-key", "sim-lamp", "--device-name", "lamp-01", "--token", token],
        ...["--id-token", await jwt(user), "--endpoints", endpoints],
      );
      assert.equal(bound.exitCode, 0, String(bound.error));
      assert.equal(bound.body.userId, user.userId);
    }
    // A factory reset: the cloud removes the device's bindings.
    assert.equal(await lamp.device.reset(), true);
    assert.ok(lamp.texts().includes("awss_report_reset_reply"));
    for (const user of [users.bob, users.carol]) {
      const list = await devicesOf(user);
      assert.deepEqual(list.body.devices, [], `${user.username}'s binding is gone`);
    }
    await lamp.stop();
  });

  it("no token before the cloud answered: the report is retried (2 tries, then given up) and GETs get no answer", async () => {
    // The cloud cannot store the token: binding-report fails, the rule's retries too, no reply.
    for (const operation of ["PutItem", "UpdateItem"]) {
      stack.dynamoFaults?.inject({ operation, bodyIncludes: DEFAULT_BINDING_TABLE, times: 1000 });
    }
    try {
      const lamp = await lampDevice("lamp-02", {
        replyTimeout: "0.3",
      });
      lamp.device.beginBinding();
      const early = await get(lamp.lanPort);
      assert.equal(early.exitCode, 1);
      assert.equal(early.body.error.code, "NO_DEVICE_FOUND");
      const giveUp = await lamp.nth("report-timeout");
      assert.equal(giveUp.details?.tries, 2);
      const reports = lamp.events.filter((e) => e.event === "report-token");
      assert.equal(reports.length, 2, "the first report and one retry");
      assert.equal(
        reports[0]?.details?.token,
        reports[1]?.details?.token,
        "the retry reports the same token",
      );
      assert.notEqual(reports[0]?.details?.id, reports[1]?.details?.id);
      assert.equal(lamp.events.filter((e) => e.event === "sending").length, 0, "nothing answered");
      assert.equal(lamp.events.filter((e) => e.event === "notify-sent").length, 0, "nothing notified");
      await lamp.stop();
    } finally {
      stack.dynamoFaults?.clear();
    }
  });

  it("an expired token is not given out: the GET gets no answer and a fresh token is reported (injected clock)", async () => {
    const lamp = await device({
      productKey: "sim-lamp",
      deviceName: "lamp-03",
      // What `onramp device connect --save` writes.
      from: saved("lamp-03"),
      notifyCount: "0",
    });
    lamp.device.beginBinding();
    await lamp.nth("report-token-reply");
    nowMs += 46_000;
    const stale = await get(lamp.lanPort);
    assert.equal(stale.body.error.code, "NO_DEVICE_FOUND");
    const refused = await lamp.nth("no-token");
    assert.equal(refused.details?.reportPending, false);
    await lamp.nth("report-token-reply", 2);
    const fresh = await get(lamp.lanPort);
    assert.equal(fresh.exitCode, 0, String(fresh.error));
    const reports = lamp.events.filter((e) => e.event === "report-token");
    assert.equal(fresh.body.devices[0].token, reports[1]?.details?.token);
    assert.notEqual(fresh.body.devices[0].token, reports[0]?.details?.token);
    await lamp.stop();
  });

  it("path 3: the phone makes the token; bound whichever reaches the cloud first", async () => {
    // The phone registers first (and does not wait); the device reports later.
    const first = "A1".repeat(16);
    const registered = await cli(
      ...["phone", "token", "--token", first, "--no-wait"],
      ...["--id-token", await jwt(users.alice), "--endpoints", endpoints],
    );
    assert.equal(registered.exitCode, 0, String(registered.error));
    assert.deepEqual(
      { ...registered.body, token: undefined },
      { step: "registered", token: undefined, status: "pending" },
    );
    const lamp = await lampDevice("lamp-04", {
      phoneToken: first,
    });
    lamp.device.beginBinding();
    const reply = await lamp.nth("report-token-reply");
    assert.equal(reply.details?.token, first);
    assert.equal(
      lamp.events.filter((e) => e.event === "notify-sent").length,
      0,
      "no notify for a phone's token",
    );
    const waited = await cli(
      ...["phone", "token", "--token", first, "--interval", "0.1", "--timeout", "20"],
      ...["--id-token", await jwt(users.alice), "--endpoints", endpoints],
    );
    assert.equal(waited.exitCode, 0, String(waited.error));
    assert.equal(waited.body.step, "bound");
    assert.equal(waited.body.binding.userId, users.alice.userId);
    await lamp.stop();

    // The phone polls while the device connects and reports: either may reach the cloud first.
    const second = "B2".repeat(16);
    const polling = cli(
      ...["phone", "token", "--token", second, "--interval", "0.1", "--timeout", "20"],
      ...["--id-token", await jwt(users.bob), "--endpoints", endpoints],
    );
    const again = await lampDevice("lamp-04", {
      phoneToken: second,
    });
    again.device.beginBinding();
    const polled = await polling;
    assert.equal(polled.exitCode, 0, String(polled.error));
    assert.equal(polled.body.binding.userId, users.bob.userId);
    assert.equal(polled.body.binding.deviceName, "lamp-04");
    await again.stop();
  });

  it("clear errors, as JSON under --json", async () => {
    const cases: [string[], string, RegExp][] = [
      [
        ["phone", "bind", "--product-key", "p", "--device-name", "d", "--token", "xyz"],
        "CLI_ERROR",
        /--token must be 32 hexadecimal/,
      ],
      [
        ["phone", "devices", "--endpoints", endpoints],
        "CLI_ERROR",
        /--id-token JWT .* or locally --user NAME/,
      ],
      // The API's own 401 (API Gateway's DEFAULT_4XX shape), with the hint about the ID token.
      [
        ["phone", "devices", "--id-token", "not-a-jwt", "--endpoints", endpoints],
        "UNAUTHORIZED",
        /HTTP 401 .*the ID token is missing, expired or not from this API's issuer/,
      ],
      [["phone", "discover", "--no-listen"], "CLI_ERROR", /--no-listen needs --get or --device/],
      [
        ["device", "simulate", "--bind", "--product-key", "sim-lamp", "--device-name", "x"],
        "CLI_ERROR",
        /a credential is required/,
      ],
      [
        ["device", "simulate", "--product-key", "sim-lamp", "--device-name", "x", "--device-secret", "s"],
        "CLI_ERROR",
        /--bind, --reset/,
      ],
      [
        [
          "device",
          "simulate",
          "--bind",
          "--product-key",
          "sim-lamp",
          "--device-name",
          "x",
          "--device-secret",
          "s",
          "--phone-token",
          "12",
        ],
        "CLI_ERROR",
        /--phone-token must be 32 hexadecimal/,
      ],
    ];
    for (const [args, code, message] of cases) {
      const run = await cli(...args);
      assert.equal(run.exitCode, 1, args.join(" "));
      assert.match(run.body?.error?.message ?? String(run.error), message, args.join(" "));
      assert.equal(run.body?.error?.code, code, args.join(" "));
    }
  });

  it("the AWSS multicast group: the notify and a GET to 224.0.1.187:5683 find the device", {
    skip: multicastSkip(),
  }, async () => {
    const heard = cli("phone", "discover", "--listen", "5683", "--first", "--timeout", "20");
    const lamp = await lampDevice("lamp-02", {
      lanPort: "5683",
      lanHost: "0.0.0.0",
      multicast: true,
    });
    lamp.device.beginBinding();
    const found = await heard;
    assert.equal(found.exitCode, 0, String(found.error));
    assert.equal(found.body.devices[0].deviceName, "lamp-02");
    assert.equal(found.body.devices[0].via, "notify");
    const notified = await lamp.nth("notify-topic");
    assert.deepEqual(notified.details?.targets, ["224.0.1.187:5683"]);
    // The phone answered the notify; once the fresh token is acknowledged, a group GET finds it.
    await lamp.nth("report-token-reply", 2);
    const asked = await cli("phone", "discover", "--no-listen", "--get", "--first", "--timeout", "10");
    assert.equal(asked.exitCode, 0, String(asked.error));
    assert.equal(asked.body.devices[0].via, "get");
    assert.equal(asked.body.devices[0].token, (await lamp.nth("report-token", 2)).details?.token);
    await lamp.stop();
  });

  it("a LAN port already taken is a clear error (LAN_PORT_UNAVAILABLE)", async () => {
    const taken = createSocket("udp4");
    await new Promise<void>((resolve) => taken.bind(0, "127.0.0.1", resolve));
    try {
      const run = await startDeviceSimulation(
        {
          bind: true,
          productKey: "sim-lamp",
          deviceName: "lamp-03",
          deviceSecret: secrets.lamp("lamp-03"),
          lanPort: String(taken.address().port),
          lanHost: "127.0.0.1",
          multicast: false,
          endpoints,
        },
        () => undefined,
      ).then(
        () => assert.fail("started on a taken port"),
        (error: unknown) => error,
      );
      assert.equal(describeCliError(run)?.code, "LAN_PORT_UNAVAILABLE");
      assert.match(
        String((run as Error).message),
        /cannot listen on UDP port \d+ .*choose another --lan-port/,
      );
      // The same device starts normally afterwards on a free port.
      const again = await device({ productKey: "sim-lamp", deviceName: "lamp-03", from: saved("lamp-03") });
      await again.stop();
    } finally {
      taken.close();
    }
  });

  it("the built CLI: Ctrl-C stops a running device cleanly", async () => {
    const child: ChildProcess = spawn(
      process.execPath,
      [
        join(PROJECT_ROOT, "bin/onramp.mjs"),
        ...["device", "simulate", "--bind", "--product-key", "sim-lamp", "--device-name", "lamp-01"],
        ...["--lan-port", "0", "--lan-host", "127.0.0.1", "--no-multicast", "--notify-count", "0"],
        ...["--endpoints", endpoints, "--json"],
      ],
      {
        env: { ...process.env, ONRAMP_DEVICE_SECRET: secrets.lamp("lamp-01") },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stderr?.on("data", (c: Buffer) => {
      err += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("awss_report_token_reply")) resolve();
      });
      child.once("exit", () => reject(new Error(`exited early:\n${out}\n${err}`)));
    });
    child.kill("SIGINT");
    assert.equal(await exited, 0, err);
    const lines = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string; token?: string });
    assert.equal(lines.at(-1)?.event, "stopped");
    const reported = lines.find((l) => l.event === "report-token");
    assert.match(String(reported?.token), /^[0-9A-F]{4}…[0-9A-F]{4}$/, "masked without --show-tokens");
  });
});

/**
 * Whether this host delivers AWSS multicast to itself (a multicast route on some interface, and
 * UDP 5683 not taken without SO_REUSEADDR): a reason to skip, or false.
 */
function multicastSkip(): string | false {
  const probe = spawnSync(
    process.execPath,
    [
      "-e",
      `const s=require("node:dgram").createSocket({type:"udp4",reuseAddr:true});
       s.on("error",()=>process.exit(2));
       s.bind(5683,()=>{try{s.addMembership("224.0.1.187");s.setMulticastLoopback(true)}catch{process.exit(3)}
         s.on("message",()=>process.exit(0));
         s.send("probe",5683,"224.0.1.187",(e)=>{if(e)process.exit(4)});
         setTimeout(()=>process.exit(5),2000)})`,
    ],
    { timeout: 10_000 },
  );
  return probe.status === 0
    ? false
    : `no multicast delivery to 224.0.1.187:5683 on this host (probe exit ${probe.status})`;
}
