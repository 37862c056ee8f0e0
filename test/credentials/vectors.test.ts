/** Published test vectors (protocols.md sections 2–4, seeds 000 and 002). */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import {
  aliyunMqttPassword,
  aliyunRegisterSign,
  buildAliyunMqttCredentials,
  buildAliyunRegisterCredentials,
  buildEnosMqttCredentials,
  buildEnosPsk,
  deriveDeviceSecret,
  hmacHex,
  parseMqttConnect,
  verifyMqttConnect,
} from "#credentials/index.ts";

describe("published vectors", () => {
  it("Alibaba MQTT: HMAC-SHA1(secret, clientId12345deviceNamedeviceproductKeypktimestamp789)", () => {
    const content = "clientId12345deviceNamedeviceproductKeypktimestamp789";
    assert.equal(hmacHex("sha1", "secret", content, "upper"), "FAFD82A3D602B37FB0FA8B7892F24A477F851A14");
    const parts = { clientId: "12345", deviceName: "device", productKey: "pk", timestamp: "789" };
    assert.equal(
      aliyunMqttPassword(parts, "secret", "hmacsha1", "upper"),
      "FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
    );
  });

  it("Alibaba MQTT: the builder writes the vector in uppercase by default and lowercase on request", () => {
    const input = {
      productKey: "pk",
      deviceName: "device",
      deviceSecret: "secret",
      clientId: "12345",
      timestamp: 789,
      signMethod: "hmacsha1",
    } as const;
    assert.deepEqual(buildAliyunMqttCredentials(input), {
      clientId: "12345|securemode=2,signmethod=hmacsha1,timestamp=789|",
      username: "device&pk",
      password: "FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
    });
    assert.equal(
      buildAliyunMqttCredentials({ ...input, hexCase: "lower" }).password,
      "fafd82a3d602b37fb0fa8b7892f24a477f851a14",
    );
  });

  it("Alibaba MQTT: the server accepts the vector in either hex case", () => {
    for (const password of [
      "FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
      "fafd82a3d602b37fb0fa8b7892f24a477f851a14",
    ]) {
      const request = parseMqttConnect({
        clientId: "12345|securemode=2,signmethod=hmacsha1,timestamp=789|",
        username: "device&pk",
        password,
      });
      assert.equal(request.scheme, "aliyun-sign");
      verifyMqttConnect(request, "secret", { now: 789 });
    }
  });

  it("seed 002: HMAC-SHA1(h1nQFYPZS0mW2352, deviceNamedevice1productKeyal123456789random123)", () => {
    const expected = "d6146f9ad1209149bfaf56341f267283e3e2b4ad";
    assert.equal(
      hmacHex("sha1", "h1nQFYPZS0mW2352", "deviceNamedevice1productKeyal123456789random123"),
      expected,
    );
    const parts = { deviceName: "device1", productKey: "al123456789", random: "123" };
    assert.equal(aliyunRegisterSign(parts, "h1nQFYPZS0mW2352", "hmacsha1"), expected);
    const built = buildAliyunRegisterCredentials({
      authType: "regnwl",
      ...parts,
      productSecret: "h1nQFYPZS0mW2352",
      clientId: "1700000000000",
      signMethod: "hmacsha1",
      hexCase: "lower",
    });
    assert.deepEqual(built, {
      clientId: "1700000000000|securemode=2,authType=regnwl,random=123,signmethod=hmacsha1|",
      username: "device1&al123456789",
      password: expected,
    });
    const request = parseMqttConnect(built);
    assert.equal(request.scheme, "aliyun-regnwl");
    verifyMqttConnect(request, "h1nQFYPZS0mW2352");
  });

  it("derived secret: groupKey r0mx..., registrationId pytest", () => {
    assert.equal(
      deriveDeviceSecret(
        "r0mxLzPr9gg5DfsaxVhOwKK2+8jEHNclmCeb9iACAyb2A7yHPDrB2/+PTmwnTAetvI6oQkwarWHxYbkIVLybEg==",
        "pytest",
      ),
      "XLXPHX5ND3KBL0BU9Y4C3ZIg4/oSSv3QlYZ0eBfbQtE=",
    );
  });

  it("EnOS PSK: seed 000 identity, key = SHA-256(secret) bytes 9..24", () => {
    for (const secureMode of [2, 3] as const) {
      const psk = buildEnosPsk({
        productKey: "MuGsF6W4",
        deviceKey: "15bBZlRknc",
        secureMode,
        lifetime: 3600,
        secret: "aaabbbcc123",
      });
      assert.equal(psk.identity, `MuGsF6W4,15bBZlRknc,${secureMode},3600`);
      const digest = createHash("sha256").update("aaabbbcc123").digest();
      assert.deepEqual(Buffer.from(psk.key), digest.subarray(8, 24));
      assert.equal(psk.keyHex, digest.subarray(8, 24).toString("hex"));
    }
  });

  it("EnOS MQTT: the documented example, clientId123deviceKeytestproductKey123timestamp1524448722000 + secret", () => {
    const content = "clientId123deviceKeytestproductKey123timestamp1524448722000aaabbbcc123";
    const built = buildEnosMqttCredentials({
      clientId: "123",
      deviceKey: "test",
      productKey: "123",
      secret: "aaabbbcc123",
      timestamp: 1524448722000,
      signMethod: "sha1",
    });
    assert.deepEqual(built, {
      clientId: "123|securemode=2,signmethod=sha1,timestamp=1524448722000|",
      username: "test&123",
      password: createHash("sha1").update(content).digest("hex").toUpperCase(),
    });
    for (const method of ["md5", "sha256"] as const) {
      const other = buildEnosMqttCredentials({
        clientId: "123",
        deviceKey: "test",
        productKey: "123",
        secret: "aaabbbcc123",
        timestamp: 1524448722000,
        signMethod: method,
      });
      assert.equal(other.password, createHash(method).update(content).digest("hex").toUpperCase());
    }
  });
});
