/**
 * What the EnOS CoAP gateway needs from the rest of the backend, as core's ports: the registry
 * and secrets (PSK lookup, activation, first login), IoT provisioning (the thing made on the first
 * login), and a publisher into AWS IoT Core (the IoT data plane on AWS, the local MQTT endpoint in
 * `npm start`). No SDK here: the runtime passes adapters in.
 */
import type { Logger } from "#core/logger.ts";
import type { Registry, SecretStore } from "#core/registry/ports.ts";
import type { DevicePublisher } from "#core/rotation/ports.ts";
import type { IotProvisioning } from "#core/vending/ports.ts";

export type EnosGatewayDeps = {
  registry: Registry;
  secrets: SecretStore;
  iot: Pick<IotProvisioning, "createThing" | "describeThing">;
  publisher: DevicePublisher;
  logger: Logger;
  clock?: () => number;
};
