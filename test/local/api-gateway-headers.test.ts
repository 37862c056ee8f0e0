import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { APIGatewayProxyEvent } from "aws-lambda";
import { apiGatewayListener } from "#local/api-gateway.ts";

describe("local API Gateway: headers reach the handler as API Gateway (REST, proxy) passes them", () => {
  let server: Server;
  let port: number;
  let seen: APIGatewayProxyEvent | undefined;

  before(async () => {
    server = createServer(
      apiGatewayListener([
        {
          method: "POST",
          path: "/echo",
          handler: async (event) => {
            seen = event;
            return { statusCode: 204, body: "" };
          },
        },
      ]),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const send = (headers: Record<string, string | string[]>) =>
    new Promise<void>((resolve, reject) => {
      const req = request({ port, host: "127.0.0.1", path: "/echo", method: "POST", headers }, (res) => {
        res.resume();
        res.on("end", resolve);
      });
      req.on("error", reject);
      req.end("{}");
    });

  it("keeps header names as the client wrote them, the last value in headers, all in multiValueHeaders", async () => {
    await send({ "Content-Type": "application/json", "X-Trace": ["a", "b"] });
    assert.equal(seen?.headers["Content-Type"], "application/json");
    assert.equal(seen?.headers["content-type"], undefined);
    assert.equal(seen?.headers["X-Trace"], "b");
    assert.deepEqual(seen?.multiValueHeaders["X-Trace"], ["a", "b"]);
    assert.deepEqual(seen?.multiValueHeaders["Content-Type"], ["application/json"]);
  });

  it("passes a repeated Content-Type on instead of dropping one (Node's req.headers keeps only the first)", async () => {
    await send({ "content-type": ["application/json", "text/plain"] });
    assert.deepEqual(seen?.multiValueHeaders["content-type"], ["application/json", "text/plain"]);
  });
});
