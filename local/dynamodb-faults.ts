import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A DynamoDB call to fail: the operation and, optionally, a text its JSON body must contain. */
export type DynamoFault = {
  operation: string;
  bodyIncludes?: string;
  errorType?: string;
  status?: number;
  times?: number;
  /**
   * Instead of an error, answer a BatchWriteItem / BatchGetItem with HTTP 200 and every request
   * handed back as UnprocessedItems / UnprocessedKeys (what DynamoDB does when a partition or an
   * index is over its throughput), writing nothing.
   */
  unprocessed?: boolean;
};

/**
 * A pass-through proxy in front of dynalite that fails chosen calls, for fault-injection tests:
 * dynalite itself cannot be told to fail. Everything not matched reaches dynalite unchanged.
 */
export class DynamoFaultProxy {
  private faults: (DynamoFault & { remaining: number })[] = [];
  private server: Server | undefined;

  constructor(private readonly target: string) {}

  inject(fault: DynamoFault): void {
    this.faults.push({ ...fault, remaining: fault.times ?? 1 });
  }

  clear(): void {
    this.faults = [];
  }

  async listen(host: string): Promise<string> {
    const upstream = new URL(this.target);
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const operation = String(req.headers["x-amz-target"] ?? "").split(".")[1] ?? "";
        const fault = this.faults.find(
          (f) =>
            f.remaining > 0 &&
            f.operation === operation &&
            (!f.bodyIncludes || body.includes(f.bodyIncludes)),
        );
        if (fault) {
          fault.remaining--;
          if (fault.unprocessed) {
            const requested = JSON.parse(body.toString()) as { RequestItems?: unknown };
            const answer =
              operation === "BatchGetItem"
                ? { Responses: {}, UnprocessedKeys: requested.RequestItems ?? {} }
                : { UnprocessedItems: requested.RequestItems ?? {} };
            res.writeHead(200, { "content-type": "application/x-amz-json-1.0" }).end(JSON.stringify(answer));
            return;
          }
          const type = fault.errorType ?? "InternalServerError";
          res.writeHead(fault.status ?? 500, { "content-type": "application/x-amz-json-1.0" }).end(
            JSON.stringify({
              __type: `com.amazonaws.dynamodb.v20120810#${type}`,
              message: "injected fault",
            }),
          );
          return;
        }
        const forward = request(
          {
            host: upstream.hostname,
            port: upstream.port,
            path: req.url,
            method: req.method,
            headers: req.headers,
          },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        forward.on("error", () => res.destroy());
        forward.end(body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, host, resolve));
    return `http://${host}:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
