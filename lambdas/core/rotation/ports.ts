/** Publishes a message to a device's topic (the AWS IoT data plane; locally the MQTT endpoint). */
export interface DevicePublisher {
  publish(topic: string, payload: unknown): Promise<void>;
}

/** The topics of certificate rotation over MQTT, under the device's own `things/{thingName}/`. */
export const rotationTopics = {
  /** The device asks: `{ requestId?, csr }`. The rule adds thingName, principal and clientId. */
  request: (thingName: string) => `things/${thingName}/certificates/rotate`,
  accepted: (thingName: string) => `things/${thingName}/certificates/rotate/accepted`,
  rejected: (thingName: string) => `things/${thingName}/certificates/rotate/rejected`,
  /** An operator asks the device to rotate (`onramp registry rotate`). */
  required: (thingName: string) => `things/${thingName}/certificates/rotate/required`,
} as const;
