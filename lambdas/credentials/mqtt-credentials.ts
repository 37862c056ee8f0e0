/** The three MQTT CONNECT fields a device sends. */
export interface MqttCredentials {
  clientId: string;
  username: string;
  password: string;
}
