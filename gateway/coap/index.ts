/**
 * CoAP (RFC 7252) over a secured association: the public boundary of gateway/coap (no EnOS here).
 * The client over DTLS (node-dtls-client) is in coaps-client.ts, imported only by tools.
 */
export {
  CoapClient,
  type CoapClientOptions,
  type CoapClientRequest,
  type CoapClientResponse,
} from "./client.ts";
export { type CoapMethod, ContentFormat, ResponseCode } from "./constants.ts";
export { serveCoapOnSession } from "./serve-session.ts";
export {
  type CoapEndpointStats,
  type CoapHandler,
  type CoapRequest,
  type CoapResponse,
  CoapServerEndpoint,
  type CoapServerEndpointOptions,
  jsonResponse,
  textResponse,
} from "./server-endpoint.ts";
