import { type IoTDataPlaneClient, PublishCommand } from "@aws-sdk/client-iot-data-plane";
import type { DevicePublisher } from "#core/rotation/ports.ts";
import { aws } from "./aws-errors.ts";

/** Publishes to devices through the AWS IoT data plane (iot:Publish, QoS 1). */
export class IotDataPublisher implements DevicePublisher {
  constructor(private readonly client: IoTDataPlaneClient) {}

  async publish(topic: string, payload: unknown): Promise<void> {
    await aws("Publish", () =>
      this.client.send(
        new PublishCommand({ topic, qos: 1, payload: new TextEncoder().encode(JSON.stringify(payload)) }),
      ),
    );
  }
}
