import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const mainScript = fileURLToPath(new URL("../../local/main.ts", import.meta.url));

/** Runs `local/main.ts` (what `npm start` runs) with these arguments until it exits. */
function start(args: string[]) {
  const result = spawnSync(process.execPath, ["--import", "tsx", mainScript, ...args], {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  });
  return { code: result.status, stderr: result.stderr, stdout: result.stdout };
}

describe("npm start --host: loopback only unless --i-know-this-is-exposed", () => {
  for (const host of ["0.0.0.0", "::", "192.168.1.10", "example.com"]) {
    it(`refuses --host ${host} with exit code 2 and says why`, () => {
      const { code, stderr } = start(["--host", host, "--in-memory", "--no-demo"]);
      assert.equal(code, 2, stderr);
      assert.match(
        stderr,
        new RegExp(`refusing --host ${host.replace(/\./g, "\\.")}: it is not a loopback address`),
      );
      assert.match(stderr, /--i-know-this-is-exposed/);
    });
  }

  it("documents the rule and the flag in --help", () => {
    const { code, stdout } = start(["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /only loopback addresses/);
    assert.match(stdout, /--i-know-this-is-exposed/);
  });

  it("lets --i-know-this-is-exposed past the check (an unusable address then fails to listen, exit 1)", () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface here: passing the check shows as a listen error.
    const { code, stderr } = start([
      "--host",
      "192.0.2.1",
      "--i-know-this-is-exposed",
      "--in-memory",
      "--no-demo",
    ]);
    assert.equal(code, 1, stderr);
    assert.doesNotMatch(stderr, /refusing --host/);
    assert.match(stderr, /the local stack did not start/);
  });
});
