import {
  IoTDataPlaneClient,
  type IoTDataPlaneClientConfig,
  PublishCommand,
} from "@aws-sdk/client-iot-data-plane";
import type { DevicePublisher } from "#core/rotation/ports.ts";
import { aws } from "./aws-errors.ts";

/**
 * Publishes to devices through the AWS IoT data plane (iot:Publish, QoS 1). The account's data
 * endpoint is found once, on first use (DescribeEndpoint iot:Data-ATS), unless given.
 */
export class IotDataPublisher implements DevicePublisher {
  private client: Promise<IoTDataPlaneClient> | undefined;

  constructor(
    private readonly dataEndpoint: () => Promise<string>,
    /** Region and credentials (the CLI against the local stack); the defaults on Lambda. */
    private readonly clientConfig: IoTDataPlaneClientConfig = {},
  ) {}

  async publish(topic: string, payload: unknown): Promise<void> {
    this.client ??= this.dataEndpoint().then(
      (host) =>
        new IoTDataPlaneClient({
          ...this.clientConfig,
          endpoint: host.includes("://") ? host : `https://${host}`,
        }),
    );
    const client = await this.client.catch((error: unknown) => {
      this.client = undefined;
      throw error;
    });
    await aws("Publish", () =>
      client.send(
        new PublishCommand({ topic, qos: 1, payload: new TextEncoder().encode(JSON.stringify(payload)) }),
      ),
    );
  }
}
