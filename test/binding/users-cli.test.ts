import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "#core/logger.ts";
import { type LocalStack, startLocalStack } from "#local/stack.ts";
import { runBinAsync } from "#test/support/spawned-stack.ts";

/**
 * `onramp users create | token` against a local stack with a data folder: the ID token it prints
 * is accepted by the phone API's authorizer (the same issuer key, JWKS), operators get the group;
 * errors are clear, also under --json.
 */
describe("onramp users", () => {
  let stack: LocalStack;
  let dataDir: string;
  let endpoints: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "onramp-users-"));
    stack = await startLocalStack({
      dataDir,
      logger: silentLogger,
      ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0, coap: 0 },
    });
    endpoints = join(dataDir, "endpoints.json");
  });
  after(async () => {
    await stack?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runBinAsync(["users", ...args, "--endpoints", endpoints]);
  const devices = (idToken: string) =>
    fetch(new URL("/v1/devices", stack.endpoints.api), { headers: { authorization: `Bearer ${idToken}` } });

  it("creates a user whose ID token the phone API accepts; token prints a fresh one", async () => {
    assert.equal(statSync(join(dataDir, "jwt-signing-key.pem")).mode & 0o777, 0o600);
    const created = await cli("create", "alice", "--json");
    assert.equal(created.code, 0, created.stderr);
    const alice = JSON.parse(created.stdout) as {
      userId: string;
      username: string;
      idToken: string;
      groups: string[];
    };
    assert.equal(alice.username, "alice");
    assert.deepEqual(alice.groups, []);
    assert.equal((await devices(alice.idToken)).status, 200);
    const again = await cli("token", "alice", "--json");
    const fresh = JSON.parse(again.stdout) as { userId: string; idToken: string };
    assert.equal(fresh.userId, alice.userId, "same user");
    assert.equal((await devices(fresh.idToken)).status, 200);
    const owners = await fetch(new URL("/v1/products/prod1/devices/d1/owners", stack.endpoints.api), {
      headers: { authorization: `Bearer ${alice.idToken}` },
    });
    assert.equal(owners.status, 403);
  });

  it("--operator puts the user in onramp-operators", async () => {
    const created = await cli("create", "ops", "--operator", "--json");
    const ops = JSON.parse(created.stdout) as { idToken: string; groups: string[] };
    assert.deepEqual(ops.groups, ["onramp-operators"]);
    const owners = await fetch(new URL("/v1/products/prod1/devices/d1/owners", stack.endpoints.api), {
      headers: { authorization: `Bearer ${ops.idToken}` },
    });
    assert.equal(owners.status, 200);
  });

  it("onramp products create|update set the product's binding setting; bad values are named", async () => {
    const run = (...args: string[]) => runBinAsync(["products", ...args, "--endpoints", endpoints, "--json"]);
    const created = await run(
      "create",
      "--product-key",
      "bindprod",
      "--name",
      "B",
      "--binding-ownership",
      "shared",
    );
    assert.equal(created.code, 0, created.stdout + created.stderr);
    assert.deepEqual((JSON.parse(created.stdout) as { binding: unknown }).binding, {
      ownership: "shared",
      tokenTtlSeconds: 180,
    });
    const updated = await run("update", "--product-key", "bindprod", "--binding-token-ttl", "300");
    assert.equal(updated.code, 0, updated.stdout + updated.stderr);
    assert.deepEqual((await stack.services.registry.getProduct("bindprod"))?.binding, {
      ownership: "shared",
      tokenTtlSeconds: 300,
    });
    const bad = await run("update", "--product-key", "bindprod", "--binding-ownership", "many");
    assert.match(
      (JSON.parse(bad.stdout) as { error: { message: string } }).error.message,
      /--binding-ownership/,
    );
    const missing = await run("update", "--product-key", "nosuch", "--binding-token-ttl", "60");
    assert.notEqual(missing.code, 0);
    assert.match(missing.stdout, /No product nosuch/);
  });

  it("refuses a second create, an unknown user and a bad name, with codes under --json", async () => {
    const twice = await cli("create", "alice", "--json");
    assert.notEqual(twice.code, 0);
    assert.equal((JSON.parse(twice.stdout) as { error: { code: string } }).error.code, "USER_EXISTS");
    const unknown = await cli("token", "nobody", "--json");
    assert.equal((JSON.parse(unknown.stdout) as { error: { code: string } }).error.code, "NO_SUCH_USER");
    const bad = await cli("create", "../x", "--json");
    assert.equal((JSON.parse(bad.stdout) as { error: { code: string } }).error.code, "INVALID_USERNAME");
    const help = await runBinAsync(["users", "create", "--help"]);
    assert.match(help.stdout, /--operator/);
  });
});
