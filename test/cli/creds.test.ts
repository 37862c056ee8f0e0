import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CommanderError } from "commander";
import { CliError } from "#cli/cli-error.ts";
import { onramp } from "#test/support/run-cli.ts";

/** Runs `onramp creds ...` in-process and returns what it printed. */
async function run(...args: string[]): Promise<{ stdout: string; json: Record<string, unknown> }> {
  const { stdout } = await onramp("creds", ...args);
  return { stdout, json: args.includes("--json") ? JSON.parse(stdout) : {} };
}

/** Runs a command that must fail and returns the error and what it printed first. */
async function fail(...args: string[]): Promise<unknown> {
  try {
    await run(...args);
  } catch (error) {
    return error;
  }
  assert.fail(`onramp creds ${args.join(" ")} succeeded`);
}

describe("onramp creds", () => {
  it("aliyun-mqtt prints the published vector", async () => {
    const { json } = await run(
      "aliyun-mqtt",
      ...["--product-key", "pk", "--device-name", "device", "--device-secret", "secret"],
      ...["--client-id", "12345", "--sign-method", "hmacsha1", "--timestamp", "789", "--json"],
    );
    assert.deepEqual(json, {
      clientId: "12345|securemode=2,signmethod=hmacsha1,timestamp=789|",
      username: "device&pk",
      password: "FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
      timestamp: 789,
    });
  });

  it("aliyun-register prints the seed 002 vector for register and regnwl", async () => {
    for (const mode of ["register", "regnwl"]) {
      const { json } = await run(
        "aliyun-register",
        ...["--mode", mode, "--product-key", "al123456789", "--device-name", "device1"],
        ...[
          "--product-secret",
          "h1nQFYPZS0mW2352",
          "--random",
          "123",
          "--sign-method",
          "hmacsha1",
          "--lowercase",
        ],
        ...["--client-id", "c1", "--json"],
      );
      assert.deepEqual(json, {
        mode,
        clientId: `c1|securemode=2,authType=${mode},random=123,signmethod=hmacsha1|`,
        username: "device1&al123456789",
        password: "d6146f9ad1209149bfaf56341f267283e3e2b4ad",
        random: "123",
        replyTopic: `/ext/${mode}`,
      });
    }
  });

  it("aliyun-register --mode https prints the form and --mode connwl the token connect", async () => {
    const https = await run(
      "aliyun-register",
      ...["--mode", "https", "--product-key", "al123456789", "--device-name", "device1"],
      ...["--product-secret", "h1nQFYPZS0mW2352", "--random", "123", "--sign-method", "hmacsha1", "--json"],
    );
    assert.equal(https.json.path, "/auth/register/device");
    assert.equal(
      https.json.body,
      "productKey=al123456789&deviceName=device1&random=123&sign=D6146F9AD1209149BFAF56341F267283E3E2B4AD&signMethod=hmacsha1",
    );
    const connwl = await run(
      "aliyun-register",
      ...["--mode", "connwl", "--product-key", "pk", "--device-name", "dn"],
      ...["--client-id", "cid", "--device-token", "tok", "--json"],
    );
    assert.deepEqual(connwl.json, {
      mode: "connwl",
      clientId: "cid|securemode=-2,authType=connwl|",
      username: "dn&pk",
      password: "tok",
    });
  });

  it("aliyun-register defaults the random to a fresh value", async () => {
    const args = [
      "aliyun-register",
      "--product-key",
      "pk",
      "--device-name",
      "dn",
      "--product-secret",
      "s",
      "--json",
    ];
    const [a, b] = [await run(...args), await run(...args)];
    assert.match(String(a.json.random), /^[0-9a-f]{16}$/);
    assert.notEqual(a.json.random, b.json.random);
  });

  it("derive prints the published derived secret", async () => {
    const { json } = await run(
      "derive",
      ...[
        "--group-key",
        "r0mxLzPr9gg5DfsaxVhOwKK2+8jEHNclmCeb9iACAyb2A7yHPDrB2/+PTmwnTAetvI6oQkwarWHxYbkIVLybEg==",
      ],
      ...["--registration-id", "pytest", "--json"],
    );
    assert.deepEqual(json, {
      registrationId: "pytest",
      deviceSecret: "XLXPHX5ND3KBL0BU9Y4C3ZIg4/oSSv3QlYZ0eBfbQtE=",
    });
  });

  it("enos-psk prints identity and key", async () => {
    const { json } = await run(
      "enos-psk",
      ...[
        "--product-key",
        "MuGsF6W4",
        "--device-key",
        "15bBZlRknc",
        "--secret",
        "s",
        "--secure-mode",
        "3",
        "--json",
      ],
    );
    assert.equal(json.identity, "MuGsF6W4,15bBZlRknc,3,3600");
    assert.match(String(json.keyHex), /^[0-9a-f]{32}$/);
    assert.equal(String(json.keyBytes).split(" ").length, 16);
  });

  it("enos-mqtt prints the documented example and defaults the timestamp to now", async () => {
    const { json } = await run(
      "enos-mqtt",
      ...["--product-key", "123", "--device-key", "test", "--client-id", "123", "--secret", "aaabbbcc123"],
      ...["--sign-method", "sha1", "--timestamp", "1524448722000", "--json"],
    );
    assert.equal(json.clientId, "123|securemode=2,signmethod=sha1,timestamp=1524448722000|");
    assert.equal(json.username, "test&123");
    const before = Date.now();
    const now = await run("enos-mqtt", "--product-key", "p", "--device-key", "d", "--secret", "s", "--json");
    assert.ok(Number(now.json.timestamp) >= before && Number(now.json.timestamp) <= Date.now());
  });

  it("prints aligned text without --json", async () => {
    const { stdout } = await run("derive", "--group-key", "YWJj", "--registration-id", "x");
    assert.match(stdout, /^registrationId {2}x\ndeviceSecret {4}\S+\n$/);
  });

  it("verify-mqtt accepts the vector and rejects a tampered one with exit code 2", async () => {
    const base = ["verify-mqtt", "--client-id", "12345|securemode=2,signmethod=hmacsha1,timestamp=789|"];
    const rest = ["--username", "device&pk", "--secret", "secret", "--now", "789", "--json"];
    const ok = await run(...base, "--password", "fafd82a3d602b37fb0fa8b7892f24a477f851a14", ...rest);
    assert.equal(ok.json.valid, true);
    assert.equal(ok.json.scheme, "aliyun-sign");
    assert.equal(ok.json.password, undefined);
    const b64 = Buffer.from("FAFD82A3D602B37FB0FA8B7892F24A477F851A14").toString("base64");
    assert.equal((await run(...base, "--password", b64, "--base64-password", ...rest)).json.valid, true);
    const error = await fail(...base, "--password", "0".repeat(40), ...rest);
    assert.ok(error instanceof CliError);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, /BAD_SIGNATURE \(password\)/);
  });

  it("reports bad input as a CliError naming the option", async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ["enos-psk", "--product-key", "a", "--device-key", "b", "--secret", "s", "--lifetime", "10"],
        /--lifetime/,
      ],
      [["enos-psk", "--product-key", "a,b", "--device-key", "b", "--secret", "s"], /--product-key/],
      [
        ["enos-mqtt", "--product-key", "a", "--device-key", "b", "--secret", "s", "--sign-method", "x"],
        /--sign-method/,
      ],
      [
        ["enos-mqtt", "--product-key", "a", "--device-key", "b", "--secret", "s", "--timestamp", "soon"],
        /--timestamp/,
      ],
      [
        ["aliyun-mqtt", "--product-key", "a", "--device-name", "b&c", "--device-secret", "s"],
        /--device-name/,
      ],
      [["aliyun-register", "--product-key", "a", "--device-name", "b", "--mode", "x"], /--mode/],
      [["aliyun-register", "--product-key", "a", "--device-name", "b"], /--product-secret/],
      [["aliyun-register", "--product-key", "a", "--device-name", "b", "--mode", "connwl"], /--client-id/],
      [["derive", "--group-key", "not base64", "--registration-id", "x"], /--group-key/],
    ];
    for (const [args, pattern] of cases) {
      const error = await fail(...args);
      assert.ok(error instanceof CliError, `${args.join(" ")}: ${String(error)}`);
      assert.match(error.message, pattern);
      assert.ok(!/\n\s+at /.test(error.message));
    }
  });

  it("enforces required options", async () => {
    const error = await fail("aliyun-mqtt", "--product-key", "a", "--device-name", "b");
    assert.ok(error instanceof CommanderError);
    assert.equal(error.code, "commander.missingMandatoryOptionValue");
  });

  it("never echoes a secret in an error", async () => {
    const error = await fail(
      "enos-psk",
      "--product-key",
      "a",
      "--device-key",
      "b",
      "--secret",
      "SECRET-123",
      "--lifetime",
      "1",
    );
    assert.ok(error instanceof CliError);
    assert.ok(!error.message.includes("SECRET-123"));
  });
});
