import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { CliError } from "#cli/cli-error.ts";
import { deriveDeviceSecret } from "#credentials/derived-secret.ts";
import { seedDemo } from "#local/seed-demo.ts";
import { startTestStack } from "#test/support/local-stack.ts";
import { onramp, runOnramp } from "#test/support/run-cli.ts";

type Stack = Awaited<ReturnType<typeof startTestStack>>;
type Step = { step: string; [key: string]: unknown };

const root = fileURLToPath(new URL("../..", import.meta.url));

/**
 * `onramp products create --mqtt-auth`, `products list`, `registry reset` and `onramp device
 * connect` against the local stack: real registration (MQTT and HTTPS), EnOS activation, the
 * custom authorizer and the policy it returns, through the CLI's real mqtt client over TLS.
 */
describe("onramp device connect and secret-product commands against the local stack", () => {
  let stack: Stack;
  let dir: string;
  let endpoints: string;
  let demo: Awaited<ReturnType<typeof seedDemo>>["secretProducts"];

  before(async () => {
    stack = await startTestStack();
    dir = mkdtempSync(join(tmpdir(), "onramp-connect-"));
    endpoints = join(dir, "endpoints.json");
    const rootCa = join(dir, "root-ca.pem");
    writeFileSync(rootCa, stack.rootCaPem);
    writeFileSync(endpoints, JSON.stringify({ ...stack.endpoints, rootCa }));
    demo = (await seedDemo(stack.services)).secretProducts;
  });
  after(async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `onramp device connect ... --json`: the steps printed, one JSON object per line. */
  const connect = async (...args: string[]): Promise<Step[]> => {
    const run = await onramp("device", "connect", ...args, "--json", "--endpoints", endpoints);
    return run.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Step);
  };
  /** The CliError code a refused run threw. */
  const refusal = async (...args: string[]): Promise<{ code: string; message: string; stdout: string }> => {
    const run = await runOnramp("device", "connect", ...args, "--endpoints", endpoints);
    assert.ok(run.error, `expected a refusal, got: ${run.stdout}`);
    const error = run.error as CliError;
    return { code: error.code, message: error.message, stdout: run.stdout };
  };

  it("products create takes --mqtt-auth and its options, refuses combinations that mean nothing; list shows the mode", async () => {
    const create = (...args: string[]) =>
      runOnramp("products", "create", "--name", "N", "--json", "--endpoints", endpoints, ...args);
    const plug = await create(
      "--product-key",
      "cli-plug",
      "--auth-mode",
      "product-secret",
      "--mqtt-auth",
      "aliyun-dynamic",
      "--allow-regnwl",
      "--timestamp-window",
      "300",
    );
    assert.equal(plug.error, undefined);
    assert.deepEqual((JSON.parse(plug.stdout) as { mqttAuth: unknown }).mqttAuth, {
      scheme: "aliyun-dynamic",
      allowRegnwl: true,
      timestampWindowSeconds: 300,
    });
    const meter = await create(
      "--product-key",
      "cli-meter",
      "--auth-mode",
      "product-secret",
      "--mqtt-auth",
      "enos",
      "--dynamic-activation",
    );
    assert.deepEqual((JSON.parse(meter.stdout) as { mqttAuth: unknown }).mqttAuth, {
      scheme: "enos",
      dynamicActivation: true,
    });

    const refused = async (pattern: RegExp, ...args: string[]) => {
      const run = await create("--product-key", "cli-refused", ...args);
      assert.match(String((run.error as Error | undefined)?.message), pattern, args.join(" "));
    };
    await refused(/--mqtt-auth must be one of aliyun, aliyun-dynamic, enos/, "--mqtt-auth", "tuya");
    await refused(
      /--allow-regnwl is for --mqtt-auth aliyun-dynamic/,
      "--mqtt-auth",
      "aliyun",
      "--allow-regnwl",
    );
    await refused(
      /--dynamic-activation is for --mqtt-auth enos/,
      "--mqtt-auth",
      "aliyun",
      "--dynamic-activation",
    );
    await refused(/--allow-regnwl needs --mqtt-auth/, "--allow-regnwl");
    await refused(
      /--timestamp-window must be a whole number/,
      "--mqtt-auth",
      "aliyun",
      "--timestamp-window",
      "0",
    );
    // createProduct's own rule, reported as it words it.
    await refused(
      /aliyun logins need a per-device secret/,
      "--mqtt-auth",
      "aliyun",
      "--auth-mode",
      "product-secret",
    );
    assert.equal(await stack.services.registry.getProduct("cli-refused"), undefined);

    const list = (await onramp("products", "list", "--endpoints", endpoints)).stdout;
    assert.match(list, /^cli-plug\t.*\tmqtt=aliyun-dynamic\+regnwl\t/m);
    assert.match(list, /^cli-meter\t.*\tmqtt=enos\+activation\t/m);
    assert.match(list, /^demo-aliyun\t.*\tmqtt=aliyun\t/m);
  });

  it("an Alibaba device connects with its secret, subscribes, publishes and gets its message back", async () => {
    const secret = demo.aliyun.deviceSecrets["lamp-0001"] ?? "";
    const steps = await connect(
      "--product-key",
      "demo-aliyun",
      "--device-name",
      "lamp-0001",
      "--device-secret",
      secret,
      "--subscribe",
      "/demo-aliyun/lamp-0001/user/#",
      "--publish",
      "/demo-aliyun/lamp-0001/user/update",
      "--message",
      '{"on":1}',
    );
    assert.deepEqual(
      steps.map((s) => s.step),
      ["connect", "subscribe", "publish", "message", "disconnect"],
    );
    const connected = steps[0]!;
    assert.match(
      String(connected.clientId),
      /^demo-aliyun\.lamp-0001\|securemode=2,signmethod=hmacsha256,timestamp=\d+\|$/,
    );
    assert.equal(connected.username, "lamp-0001&demo-aliyun");
    assert.deepEqual(steps[3], {
      step: "message",
      topic: "/demo-aliyun/lamp-0001/user/update",
      payload: '{"on":1}',
    });
    assert.equal((await stack.services.registry.getDevice("lamp-0001"))?.status, "provisioned");

    // Human output: one line per step.
    const text = await onramp(
      "device",
      "connect",
      "--product-key",
      "demo-aliyun",
      "--device-name",
      "lamp-0001",
      "--device-secret",
      secret,
      "--publish",
      "/demo-aliyun/lamp-0001/user/update",
      "--endpoints",
      endpoints,
    );
    const lines = text.stdout.trim().split("\n");
    assert.deepEqual(
      lines.map((l) => l.split(/\s+/)[0]),
      ["connect", "publish", "disconnect"],
    );
    assert.match(lines[0]!, /\(Alibaba sign\): accepted$/);
  });

  it("a wrong secret, an unknown device and another device's topic are refused", async () => {
    const lamp = ["--product-key", "demo-aliyun", "--device-name", "lamp-0002"];
    const wrong = await refusal(
      ...lamp,
      "--device-secret",
      deriveDeviceSecret("AAAAAAAAAAAAAAAAAAAAAA==", "x"),
    );
    assert.equal(wrong.code, "CONNECT_REFUSED");
    const unknown = await refusal(
      "--product-key",
      "demo-aliyun",
      "--device-name",
      "lamp-9999",
      "--device-secret",
      demo.aliyun.deviceSecrets["lamp-0002"] ?? "",
    );
    assert.equal(unknown.code, "CONNECT_REFUSED");
    const secret = demo.aliyun.deviceSecrets["lamp-0002"] ?? "";
    const publish = await refusal(
      ...lamp,
      "--device-secret",
      secret,
      "--publish",
      "/demo-aliyun/lamp-0003/user/update",
    );
    assert.equal(publish.code, "DISCONNECTED");
    const subscribe = await refusal(
      ...lamp,
      "--device-secret",
      secret,
      "--subscribe",
      "/demo-aliyun/lamp-0003/user/#",
    );
    assert.equal(subscribe.code, "SUBSCRIBE_REFUSED");
  });

  it("regnwl saves the token (0600, never overwritten), connects with connwl; again only after registry reset, and the old token then fails", async () => {
    const file = join(dir, "plug-0001.json");
    const plug = ["--product-key", "demo-dynamic", "--device-name", "plug-0001"];
    const secret = demo.dynamic.productSecret;
    const steps = await connect(
      ...plug,
      "--product-secret",
      secret,
      "--regnwl",
      "--save",
      file,
      "--publish",
      "/demo-dynamic/plug-0001/user/update",
    );
    assert.deepEqual(
      steps.map((s) => s.step),
      ["register", "connect", "publish", "disconnect"],
    );
    assert.deepEqual(steps[0], { step: "register", authType: "regnwl", via: "mqtt", savedTo: file });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const saved = JSON.parse(readFileSync(file, "utf8")) as { clientId: string; deviceToken: string };
    assert.ok(saved.deviceToken.length >= 16);
    assert.equal(steps[1]?.clientId, `${saved.clientId}|securemode=-2,authType=connwl|`);
    assert.equal(steps[1]?.scheme, "connwl");

    // The file is never overwritten, and nothing is sent when it exists.
    const exists = await refusal(...plug, "--product-secret", secret, "--regnwl", "--save", file);
    assert.equal(exists.code, "FILE_EXISTS");
    assert.equal(readFileSync(file, "utf8").includes(saved.deviceToken), true);

    // Later runs log in with what was saved.
    assert.equal((await connect(...plug, "--from", file))[0]?.step, "connect");
    // Registered and logged in: a second registration is refused until an operator resets.
    const again = await refusal(...plug, "--product-secret", secret, "--regnwl");
    assert.equal(again.code, "REGISTRATION_REFUSED");
    const reset = JSON.parse(
      (await onramp("registry", "reset", "plug-0001", "--json", "--endpoints", endpoints)).stdout,
    ) as { status: string; deviceTokenHash?: string; sealedToken?: string };
    assert.equal(reset.status, "registered");
    assert.equal(reset.deviceTokenHash, undefined, "never printed");
    assert.equal(reset.sealedToken, undefined, "never printed");
    const replay = await refusal(...plug, "--from", file);
    assert.equal(replay.code, "CONNECT_REFUSED", "the old token no longer works");
    const fresh = await connect(...plug, "--product-secret", secret, "--regnwl");
    assert.equal(fresh[0]?.step, "register");
    assert.notEqual(fresh[0]?.deviceToken, saved.deviceToken);
    assert.equal(fresh[1]?.step, "connect");
  });

  it("register over MQTT and over HTTPS give a pre-registered device its secret; regnwl where not allowed is refused", async () => {
    const secret = demo.dynamic.productSecret;
    const mqttSteps = await connect(
      "--product-key",
      "demo-dynamic",
      "--device-name",
      "plug-pre-01",
      "--product-secret",
      secret,
      "--register",
    );
    assert.equal(mqttSteps[0]?.step, "register");
    assert.equal(mqttSteps[0]?.via, "mqtt");
    assert.equal(typeof mqttSteps[0]?.deviceSecret, "string", "without --save the secret is printed");
    assert.equal(mqttSteps[1]?.scheme, "Alibaba sign");

    const file = join(dir, "plug-pre-02.json");
    const httpsSteps = await connect(
      "--product-key",
      "demo-dynamic",
      "--device-name",
      "plug-pre-02",
      "--product-secret",
      secret,
      "--register",
      "--https",
      "--save",
      file,
    );
    assert.equal(httpsSteps[0]?.via, "https");
    const saved = JSON.parse(readFileSync(file, "utf8")) as { deviceSecret: string; obtainedBy: string };
    assert.equal(saved.obtainedBy, "register");
    const withSecret = await connect(
      "--product-key",
      "demo-dynamic",
      "--device-name",
      "plug-pre-02",
      "--device-secret",
      saved.deviceSecret,
    );
    assert.equal(withSecret[0]?.step, "connect");

    await onramp(
      "products",
      "create",
      "--product-key",
      "cli-no-regnwl",
      "--name",
      "N",
      "--auth-mode",
      "product-secret",
      "--mqtt-auth",
      "aliyun-dynamic",
      "--endpoints",
      endpoints,
    );
    const productSecret = await stack.services.secrets.getProductSecret("cli-no-regnwl");
    const notAllowed = await refusal(
      "--product-key",
      "cli-no-regnwl",
      "--device-name",
      "new-device",
      "--product-secret",
      productSecret ?? "",
      "--regnwl",
    );
    assert.equal(notAllowed.code, "REGISTRATION_REFUSED");
    const wrongSecret = await refusal(
      "--product-key",
      "demo-dynamic",
      "--device-name",
      "plug-pre-01",
      "--product-secret",
      "not-the-product-secret-at-all",
      "--register",
      "--https",
    );
    assert.equal(wrongSecret.code, "REGISTRATION_REFUSED");
  });

  it("EnOS: SecureMode 3 activates and reconnects with SecureMode 2; a device born with a secret uses SecureMode 2", async () => {
    const file = join(dir, "meter-0002.json");
    const steps = await connect(
      "--enos",
      "--product-key",
      "demo-enos",
      "--device-name",
      "meter-0002",
      "--product-secret",
      demo.enos.productSecret,
      "--save",
      file,
      "--publish",
      "/sys/demo-enos/meter-0002/thing/measurepoint/post",
      "--message",
      "{}",
    );
    assert.deepEqual(
      steps.map((s) => s.step),
      ["activate", "connect", "publish", "disconnect"],
    );
    assert.equal(steps[1]?.scheme, "EnOS SecureMode 2");
    assert.match(String(steps[1]?.clientId), /^meter-0002\|securemode=2,signmethod=sha256,timestamp=\d+\|$/);
    const saved = JSON.parse(readFileSync(file, "utf8")) as { scheme: string; deviceSecret: string };
    assert.equal(saved.scheme, "enos");
    assert.equal(
      (await connect("--product-key", "demo-enos", "--device-name", "meter-0002", "--from", file))[0]?.step,
      "connect",
    );

    const born = await connect(
      "--enos",
      "--product-key",
      "demo-enos",
      "--device-name",
      "meter-0001",
      "--device-secret",
      demo.enos.deviceSecrets["meter-0001"] ?? "",
    );
    assert.equal(born[0]?.step, "connect");
  });

  it("refuses meaningless option combinations before sending anything", async () => {
    const base = ["--product-key", "demo-dynamic", "--device-name", "d"];
    const cases: Array<[RegExp, string[]]> = [
      [/a credential is required/, base],
      [
        /give one credential/,
        [...base, "--device-secret", "0123456789abcdef", "--product-secret", "0123456789abcdef"],
      ],
      [/a product secret alone does not log in/, [...base, "--product-secret", "0123456789abcdef"]],
      [/--https .* --register/, [...base, "--product-secret", "0123456789abcdef", "--regnwl", "--https"]],
      [
        /--register and --regnwl exclude each other/,
        [...base, "--product-secret", "x", "--register", "--regnwl"],
      ],
      [
        /--secure-mode 2 signs with the device secret/,
        [...base, "--enos", "--product-secret", "x", "--secure-mode", "2"],
      ],
      [
        /--message must be JSON/,
        [...base, "--device-secret", "x", "--publish", "/a/b", "--message", "not json"],
      ],
      [/--message needs --publish/, [...base, "--device-secret", "x", "--message", "{}"]],
      [/--device-token needs --client-id/, [...base, "--device-token", "t"]],
      [
        /--save keeps what registration issues/,
        [...base, "--device-secret", "x", "--save", join(dir, "never.json")],
      ],
    ];
    for (const [pattern, args] of cases) {
      const run = await refusal(...args);
      assert.match(run.message, pattern, args.join(" "));
      assert.equal(run.stdout, "", "nothing printed, nothing sent");
    }
  });

  it("--json errors come as {error: {code, message}} from the onramp binary's entry", async () => {
    // Asynchronous: the stack answers from this process's event loop.
    const args = ["--import", "tsx", "cli/main.ts", "device", "connect", "--product-key", "demo-aliyun"];
    args.push("--device-name", "lamp-0003", "--device-secret", "wrong-secret-wrong-secret");
    args.push("--json", "--endpoints", endpoints);
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        args,
        { cwd: root, encoding: "utf8", timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({
            code: error ? Number(error.code ?? -1) : 0,
            stdout: String(stdout),
            stderr: String(stderr),
          }),
      ),
    );
    assert.equal(result.code, 1, result.stderr);
    const error = JSON.parse(result.stdout) as { error: { code: string; message: string } };
    assert.equal(error.error.code, "CONNECT_REFUSED", result.stdout);
  });
});
