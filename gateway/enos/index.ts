/** The EnOS CoAP gateway (seed 000): the public boundary of gateway/enos. */
export { EnosCoapGateway, type EnosCoapGatewayOptions, type EnosGatewayStats } from "./coap-gateway.ts";
export type { EnosGatewayDeps } from "./ports.ts";
export { type EnosPskDecision, type EnosPskLogin, type EnosPskRefusal, resolveEnosPsk } from "./psk-login.ts";
export { activationPath, routeUplink, type UplinkRoute } from "./topics.ts";
