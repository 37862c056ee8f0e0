import type { DtlsSession } from "#gateway/dtls/index.ts";
import { type CoapHandler, CoapServerEndpoint, type CoapServerEndpointOptions } from "./server-endpoint.ts";

/** Serves CoAP on a DTLS session: every application record is one CoAP message (RFC 7252 §9.1). */
export function serveCoapOnSession(
  session: Pick<DtlsSession, "send" | "on">,
  handler: CoapHandler,
  options?: CoapServerEndpointOptions,
): CoapServerEndpoint {
  const endpoint = new CoapServerEndpoint((datagram) => session.send(datagram), handler, options);
  session.on("data", (datagram) => endpoint.receive(datagram));
  session.on("close", () => endpoint.close());
  return endpoint;
}
