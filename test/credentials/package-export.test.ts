import assert from "node:assert/strict";
import { it } from "node:test";

it("is importable as iot-onramp/credentials (the built bundle device code uses)", async () => {
  const credentials = (await import("iot-onramp/credentials")) as typeof import("#credentials/index.ts");
  assert.equal(
    credentials.deriveDeviceSecret(
      "r0mxLzPr9gg5DfsaxVhOwKK2+8jEHNclmCeb9iACAyb2A7yHPDrB2/+PTmwnTAetvI6oQkwarWHxYbkIVLybEg==",
      "pytest",
    ),
    "XLXPHX5ND3KBL0BU9Y4C3ZIg4/oSSv3QlYZ0eBfbQtE=",
  );
  const fields = {
    serialNumber: "SN-1",
    productKey: "pk-1",
    timestamp: 1,
    nonce: "n".repeat(16),
    keyMode: "server" as const,
  };
  const signature = credentials.signVendRequest(fields, "secret");
  assert.equal(credentials.verifyVendSignature(fields, "secret", signature), true);
  assert.equal(credentials.verifyVendSignature(fields, "other", signature), false);
});
