import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { describe, it } from "node:test";
import { defaultSecretNames } from "#adapters/services.ts";
import { NON_BASE64_PUNCTUATION, REGISTRY_KEY_BASE64_LENGTH } from "#lib/constructs/secrets.ts";
import { defaultApp, onlyResource } from "./app-fixture.ts";

const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** What Secrets Manager's GetRandomPassword counts as punctuation. */
const SECRETS_MANAGER_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

describe("lib/constructs/secrets", () => {
  it("creates the registry key secret as onramp/registry-key, generated, retained", () => {
    const { registryTemplate } = defaultApp();
    registryTemplate.hasResource("AWS::SecretsManager::Secret", {
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
    });
    const secret = onlyResource(registryTemplate, "AWS::SecretsManager::Secret").Properties;
    assert.equal(secret.Name, defaultSecretNames.registryKeyName);
    assert.deepEqual(secret.GenerateSecretString, {
      PasswordLength: REGISTRY_KEY_BASE64_LENGTH,
      ExcludeCharacters: NON_BASE64_PUNCTUATION,
      IncludeSpace: false,
      RequireEachIncludedType: false,
    });
  });

  it("leaves exactly the base64 alphabet for Secrets Manager to draw from", () => {
    const printable = Array.from({ length: 126 - 33 + 1 }, (_, i) => String.fromCharCode(33 + i));
    const allowed = printable.filter((c) => !NON_BASE64_PUNCTUATION.includes(c)).join("");
    assert.deepEqual([...allowed].sort(), [...BASE64_ALPHABET].sort());
    for (const c of NON_BASE64_PUNCTUATION) assert.ok(SECRETS_MANAGER_PUNCTUATION.includes(c), c);
  });

  it("a generated value decodes to exactly 32 bytes, as the adapter reads it", () => {
    const samples = Array.from({ length: 200 }, () =>
      Array.from({ length: REGISTRY_KEY_BASE64_LENGTH }, () => BASE64_ALPHABET[randomInt(64)]).join(""),
    );
    samples.push("/".repeat(REGISTRY_KEY_BASE64_LENGTH), "A".repeat(REGISTRY_KEY_BASE64_LENGTH));
    for (const value of samples) assert.equal(Buffer.from(value, "base64").length, 32, value);
    // 42 characters carry 252 bits: two values differing there decode differently.
    assert.notDeepEqual(Buffer.from(`B${"A".repeat(42)}`, "base64"), Buffer.from("A".repeat(43), "base64"));
  });

  it("exports the product secret prefix and the registry key name and ARN", () => {
    const outputs = defaultApp().registryTemplate.toJSON().Outputs;
    assert.equal(outputs.ProductSecretPrefix.Value, "onramp/products/");
    assert.deepEqual(outputs.ProductSecretPrefix.Export, { Name: "IotOnramp-ProductSecretPrefix" });
    assert.equal(outputs.RegistryKeySecretName.Value, "onramp/registry-key");
    assert.deepEqual(outputs.RegistryKeySecretName.Export, { Name: "IotOnramp-RegistryKeySecretName" });
    assert.deepEqual(outputs.RegistryKeySecretArn.Export, { Name: "IotOnramp-RegistryKeySecretArn" });
  });

  it("builds the product secret ARN pattern (partition, region, account of the stack; onramp/products/*)", () => {
    const { registry } = defaultApp();
    assert.deepEqual(registry.resolve(registry.secrets.productSecretArnPattern), {
      "Fn::Join": [
        "",
        [
          "arn:",
          { Ref: "AWS::Partition" },
          ":secretsmanager:",
          { Ref: "AWS::Region" },
          ":",
          { Ref: "AWS::AccountId" },
          ":secret:onramp/products/*",
        ],
      ],
    });
  });
});
